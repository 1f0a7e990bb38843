# Copies of datasets to the sites in config, proven complete by a checksummed manifest.


rule copy_to_site:
    input:
        statistics=f"{LINEAGE}/statistics/{{dataset}}.json",
    output:
        record=temp(f"{PENDING}/transfer/{{site}}/{{dataset}}.json"),
    params:
        src="results/datasets/{dataset}.zarr",
        dst=lambda w: smk.site_path(CFG, w.site, w.dataset),
        url=lambda w: CFG.sites[w.site].url,
    threads: 4
    log:
        f"{LOGS}/transfer/{{site}}/{{dataset}}.log",
    benchmark:
        f"{BENCH}/transfer/{{site}}/{{dataset}}.tsv"
    resources:
        mem_mb=1000,
        runtime=120,
    conda:
        "../../envs/data.yaml"
    shell:
        "wxpipe copy {params.src:q} {params.dst:q} --threads {threads} --url {params.url:q}"
        " --lineage {output.record:q} --upstream {input.statistics:q} 2> {log:q}"


rule transfer:
    input:
        expand(f"{PENDING}/transfer/{{transfer}}.json", transfer=TRANSFERS),
    output:
        expand(f"{LINEAGE}/transfer/{{transfer}}.json", transfer=TRANSFERS),
    log:
        f"{LOGS}/transfer.log",
    benchmark:
        f"{BENCH}/transfer.tsv"
    resources:
        mem_mb=200,
        runtime=5,
    conda:
        "../../envs/data.yaml"
    shell:
        "wxpipe publish {input:q} --to {output:q} 2> {log:q}"
