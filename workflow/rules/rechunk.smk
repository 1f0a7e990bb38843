# Layouts: the dataset in another chunking (e.g. time series for point-wise models), verified
# region by region against the source before the layout's record is written.


rule rechunk_layout:
    input:
        statistics=lambda w: f"{LINEAGE}/statistics/{CFG.layouts[w.layout].dataset}.json",
    output:
        layout=directory("results/layouts/{layout}.zarr"),
        record=temp(f"{PENDING}/rechunk/{{layout}}.json"),
    params:
        src=lambda w: f"results/datasets/{CFG.layouts[w.layout].dataset}.zarr",
        dates=lambda w: CFG.layouts[w.layout].dates,
        values=lambda w: CFG.layouts[w.layout].values,
        max_mem=lambda w, resources: f"{int(resources.mem_mb * 0.6)}MB",
    log:
        f"{LOGS}/rechunk/{{layout}}.log",
    benchmark:
        f"{BENCH}/rechunk/{{layout}}.tsv"
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        "../../envs/data.yaml"
    shell:
        "(wxpipe rechunk {params.src:q} {output.layout:q} --dates {params.dates} --values {params.values}"
        " --max-mem {params.max_mem} && wxpipe verify {params.src:q} {output.layout:q}"
        " --lineage {output.record:q} --upstream {input.statistics:q}) 2> {log:q}"


rule rechunk:
    input:
        expand(f"{PENDING}/rechunk/{{layout}}.json", layout=LAYOUTS),
    output:
        expand(f"{LINEAGE}/rechunk/{{layout}}.json", layout=LAYOUTS),
    log:
        f"{LOGS}/rechunk.log",
    benchmark:
        f"{BENCH}/rechunk.tsv"
    resources:
        mem_mb=200,
        runtime=5,
    conda:
        "../../envs/data.yaml"
    shell:
        "wxpipe publish {input:q} --to {output:q} 2> {log:q}"
