# Dataset creation as on HPC: init, parallel load parts (separate jobs), finalise.
# The store is written in place by these jobs; their outputs are the lineage records, written last.
# The stage target `dataset` (in the Snakefile) publishes finalise's record, so `-R dataset` reruns finalise.

# The recipe file is a param, not an input: its parsed content's digest is what reruns the dataset (a
# comment or a touch does not; a change of dates, params, output or build does). See smk.recipe_digest.
rule init:
    input:
        files=lambda w: smk.first_inputs(CFG, w.dataset),
        archive=lambda w: [paths.record("demo", "archive")] if smk.uses_demo(CFG, w.dataset) else [],
    output:
        record=paths.record("init", "{dataset}"),
    params:
        recipe=lambda w: str(CFG.datasets[w.dataset].recipe),
        digest=lambda w: smk.recipe_digest(CFG, w.dataset),
        store=paths.dataset("{dataset}"),
    log:
        paths.log("init", "{dataset}"),
    benchmark:
        paths.benchmark("init", "{dataset}")
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/data.yaml"
    shell:
        "wxpipe init {params.recipe:q} {params.store:q} --lineage {output.record:q} --upstream {input.archive:q} 2> {log:q}"


rule load:
    input:
        files=lambda w: smk.part_inputs(CFG, w.dataset, w.part),
        init=paths.record("init", "{dataset}"),
    output:
        record=paths.record("load", paths.part("{dataset}")),
    params:
        recipe=lambda w: str(CFG.datasets[w.dataset].recipe),
        store=paths.dataset("{dataset}"),
        part=smk.part_arg,
    log:
        paths.log("load", paths.part("{dataset}")),
    benchmark:
        paths.benchmark("load", paths.part("{dataset}"))
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        "../../envs/data.yaml"
    shell:
        "wxpipe load {params.recipe:q} {params.store:q} --part {params.part} --threads {threads} --lineage {output.record:q}"
        " --upstream {input.init:q} 2> {log:q}"


rule finalise:
    input:
        parts=lambda w: smk.load_records(CFG, w.dataset),
    output:
        record=temp(paths.pending("dataset", "{dataset}")),
    params:
        store=paths.dataset("{dataset}"),
    log:
        paths.log("finalise", "{dataset}"),
    benchmark:
        paths.benchmark("finalise", "{dataset}")
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/data.yaml"
    shell:
        "wxpipe finalise {params.store:q} --lineage {output.record:q} --upstream {input.parts:q} 2> {log:q}"
