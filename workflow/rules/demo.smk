# The embedded demo archive: real GRIB2 written by ecCodes, one file per date.
if CFG.demo is not None:

    rule demo:
        output:
            grib=smk.demo_files(CFG),
            record=paths.record("demo", "archive"),
        params:
            out=lambda w, output: os.path.dirname(output.grib[0]),
            start=CFG.demo.start.isoformat(),
            end=CFG.demo.end.isoformat(),
            frequency=smk.format_frequency(CFG.demo.frequency),
            grid=CFG.demo.grid,
            seed=CFG.demo.seed,
        log:
            paths.log("demo"),
        benchmark:
            paths.benchmark("demo")
        resources:
            mem_mb=2000,
            runtime=30,
        conda:
            "../../envs/data.yaml"
        shell:
            "wxpipe demo {params.out:q} --start {params.start} --end {params.end} --frequency {params.frequency}"
            " --grid {params.grid} --seed {params.seed} --lineage {output.record:q} 2> {log:q}"
