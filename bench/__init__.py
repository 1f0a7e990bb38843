"""wxpipe benchmarks: ``python -m bench create|compat|all`` (see bench/README.md); results go to BENCHMARKS.md."""
