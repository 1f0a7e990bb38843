# Statistics over the statistics period (the recipe's, or `datasets.<name>.statistics.start/end`),
# written into the dataset: parallel part jobs (each reads a chunk-aligned range of dates once and
# keeps its moments in a temporary .npz), then one merge job. The period is a param, so changing it
# reruns statistics and what depends on it; rerunning this stage (`snakemake -R statistics`) never
# rebuilds the dataset.


rule statistics_part:
    input:
        dataset=f"{LINEAGE}/dataset/{{dataset}}.json",
    output:
        part=temp("results/statistics/{dataset}/part-{part}.npz"),
    params:
        store="results/datasets/{dataset}.zarr",
        part=lambda w: w.part.replace("-of-", "/"),
        period=lambda w: smk.statistics_period(CFG, w.dataset),
    log:
        f"{LOGS}/statistics/{{dataset}}/part-{{part}}.log",
    benchmark:
        f"{BENCH}/statistics/{{dataset}}/part-{{part}}.tsv"
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        "../../envs/data.yaml"
    shell:
        "wxpipe statistics-part {params.store:q} --part {params.part} --out {output.part:q} {params.period:q}"
        " --threads {threads} 2> {log:q}"


rule compute_statistics:
    input:
        dataset=f"{LINEAGE}/dataset/{{dataset}}.json",
        parts=lambda w: expand(
            "results/statistics/{dataset}/part-{part}.npz",
            dataset=w.dataset,
            part=smk.part_names(CFG, w.dataset, "statistics"),
        ),
    output:
        record=temp(f"{PENDING}/statistics/{{dataset}}.json"),
    params:
        store="results/datasets/{dataset}.zarr",
        period=lambda w: smk.statistics_period(CFG, w.dataset),
    log:
        f"{LOGS}/statistics/{{dataset}}.log",
    benchmark:
        f"{BENCH}/statistics/{{dataset}}.tsv"
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/data.yaml"
    shell:
        "wxpipe statistics-merge {params.store:q} {input.parts:q} {params.period:q} --lineage {output.record:q}"
        " --upstream {input.dataset:q} 2> {log:q}"


rule statistics:
    input:
        expand(f"{PENDING}/statistics/{{dataset}}.json", dataset=DATASETS),
    output:
        expand(f"{LINEAGE}/statistics/{{dataset}}.json", dataset=DATASETS),
    log:
        f"{LOGS}/statistics.log",
    benchmark:
        f"{BENCH}/statistics.tsv"
    resources:
        mem_mb=200,
        runtime=5,
    conda:
        "../../envs/data.yaml"
    shell:
        "wxpipe publish {input:q} --to {output:q} 2> {log:q}"
