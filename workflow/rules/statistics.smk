# Statistics over the statistics period (the recipe's, or `datasets.<name>.statistics.start/end`),
# written into the dataset: parallel part jobs (each reads a chunk-aligned range of dates once and
# keeps its moments in a temporary .npz), then one merge job. The period is a param, so changing it
# reruns statistics and what depends on it; rerunning this stage (`snakemake -R statistics`) never
# rebuilds the dataset.


rule statistics_part:
    input:
        dataset=paths.record("dataset", "{dataset}"),
    output:
        part=temp(paths.statistics_part(paths.part("{dataset}"))),
    params:
        store=paths.dataset("{dataset}"),
        part=smk.part_arg,
        period=lambda w: smk.statistics_period(CFG, w.dataset),
    log:
        paths.log("statistics", paths.part("{dataset}")),
    benchmark:
        paths.benchmark("statistics", paths.part("{dataset}"))
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
        dataset=paths.record("dataset", "{dataset}"),
        parts=lambda w: smk.statistics_parts(CFG, w.dataset),
    output:
        record=temp(paths.pending("statistics", "{dataset}")),
    params:
        store=paths.dataset("{dataset}"),
        period=lambda w: smk.statistics_period(CFG, w.dataset),
    log:
        paths.log("statistics", "{dataset}"),
    benchmark:
        paths.benchmark("statistics", "{dataset}")
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/data.yaml"
    shell:
        "wxpipe statistics-merge {params.store:q} {input.parts:q} {params.period:q} --lineage {output.record:q}"
        " --upstream {input.dataset:q} 2> {log:q}"
