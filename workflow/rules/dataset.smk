# Dataset creation as on HPC: init, parallel load parts (separate jobs), finalise.
# The store is written in place by these jobs; their outputs are the lineage records, written last.

# The recipe file is a param, not an input: its parsed content's digest is what reruns the dataset (a
# comment or a touch does not; a change of dates, params, output or build does). See smk.recipe_digest.
rule init:
    input:
        files=lambda w: smk.first_inputs(CFG, w.dataset),
        archive=lambda w: [f"{LINEAGE}/demo/archive.json"] if smk.uses_demo(CFG, w.dataset) else [],
    output:
        record=f"{LINEAGE}/init/{{dataset}}.json",
    params:
        recipe=lambda w: str(CFG.datasets[w.dataset].recipe),
        digest=lambda w: smk.recipe_digest(CFG, w.dataset),
        store="results/datasets/{dataset}.zarr",
    log:
        f"{LOGS}/init/{{dataset}}.log",
    benchmark:
        f"{BENCH}/init/{{dataset}}.tsv"
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
        init=f"{LINEAGE}/init/{{dataset}}.json",
    output:
        record=f"{LINEAGE}/load/{{dataset}}/part-{{part}}.json",
    params:
        recipe=lambda w: str(CFG.datasets[w.dataset].recipe),
        store="results/datasets/{dataset}.zarr",
        part=lambda w: w.part.replace("-of-", "/"),
    log:
        f"{LOGS}/load/{{dataset}}/part-{{part}}.log",
    benchmark:
        f"{BENCH}/load/{{dataset}}/part-{{part}}.tsv"
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
        parts=lambda w: expand(f"{LINEAGE}/load/{w.dataset}/part-{{part}}.json", part=smk.part_names(CFG, w.dataset)),
    output:
        record=temp(f"{PENDING}/dataset/{{dataset}}.json"),
    params:
        store="results/datasets/{dataset}.zarr",
    log:
        f"{LOGS}/finalise/{{dataset}}.log",
    benchmark:
        f"{BENCH}/finalise/{{dataset}}.tsv"
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/data.yaml"
    shell:
        "wxpipe finalise {params.store:q} --lineage {output.record:q} --upstream {input.parts:q} 2> {log:q}"


# Stage target: `snakemake dataset`. It publishes the pending records, so `-R dataset` reruns finalise.
rule dataset:
    input:
        expand(f"{PENDING}/dataset/{{dataset}}.json", dataset=DATASETS),
    output:
        expand(f"{LINEAGE}/dataset/{{dataset}}.json", dataset=DATASETS),
    log:
        f"{LOGS}/dataset.log",
    benchmark:
        f"{BENCH}/dataset.tsv"
    resources:
        mem_mb=200,
        runtime=5,
    conda:
        "../../envs/data.yaml"
    shell:
        "wxpipe publish {input:q} --to {output:q} 2> {log:q}"
