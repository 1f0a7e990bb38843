# Statistics over the recipe's statistics period, written into the dataset. Rerunning this stage
# (`snakemake -R statistics`) never rebuilds the dataset.


rule compute_statistics:
    input:
        dataset=f"{LINEAGE}/dataset/{{dataset}}.json",
    output:
        record=temp(f"{PENDING}/statistics/{{dataset}}.json"),
    params:
        store="results/datasets/{dataset}.zarr",
    log:
        f"{LOGS}/statistics/{{dataset}}.log",
    benchmark:
        f"{BENCH}/statistics/{{dataset}}.tsv"
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        "../../envs/data.yaml"
    shell:
        "wxpipe statistics {params.store:q} --lineage {output.record:q} --upstream {input.dataset:q} 2> {log:q}"


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
