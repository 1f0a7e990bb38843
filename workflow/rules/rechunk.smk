# Layouts: the dataset in another chunking (e.g. time series for point-wise models), as on HPC:
# rechunk_init writes the empty layout, rechunk_part jobs (layouts.<name>.parts) write disjoint
# shares of its target chunks, rechunk_layout verifies it region by region against the source and
# writes its record. The layout is written in place; the init and part outputs are markers.


rule rechunk_init:
    input:
        statistics=lambda w: f"{LINEAGE}/statistics/{CFG.layouts[w.layout].dataset}.json",
    output:
        done=temp(touch(f"{PENDING}/rechunk_init/{{layout}}.done")),
    params:
        src=lambda w: f"results/datasets/{CFG.layouts[w.layout].dataset}.zarr",
        layout="results/layouts/{layout}.zarr",
        args=lambda w: smk.layout_args(CFG, w.layout),
    log:
        f"{LOGS}/rechunk_init/{{layout}}.log",
    benchmark:
        f"{BENCH}/rechunk_init/{{layout}}.tsv"
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/data.yaml"
    shell:
        "wxpipe rechunk-init {params.src:q} {params.layout:q} {params.args} 2> {log:q}"


rule rechunk_part:
    input:
        init=f"{PENDING}/rechunk_init/{{layout}}.done",
    output:
        done=temp(touch(f"{PENDING}/rechunk_part/{{layout}}/part-{{part}}.done")),
    params:
        src=lambda w: f"results/datasets/{CFG.layouts[w.layout].dataset}.zarr",
        layout="results/layouts/{layout}.zarr",
        part=lambda w: w.part.replace("-of-", "/"),
        max_mem=lambda w, resources: f"{int(resources.mem_mb * 0.6)}MB",
    log:
        f"{LOGS}/rechunk_part/{{layout}}/part-{{part}}.log",
    benchmark:
        f"{BENCH}/rechunk_part/{{layout}}/part-{{part}}.tsv"
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        "../../envs/data.yaml"
    shell:
        "wxpipe rechunk {params.src:q} {params.layout:q} --part {params.part} --max-mem {params.max_mem} --threads {threads}"
        " 2> {log:q}"


rule rechunk_layout:
    input:
        statistics=lambda w: f"{LINEAGE}/statistics/{CFG.layouts[w.layout].dataset}.json",
        parts=lambda w: expand(
            f"{PENDING}/rechunk_part/{w.layout}/part-{{part}}.done", part=smk.layout_parts(CFG, w.layout)
        ),
    output:
        record=temp(f"{PENDING}/rechunk/{{layout}}.json"),
    params:
        src=lambda w: f"results/datasets/{CFG.layouts[w.layout].dataset}.zarr",
        layout="results/layouts/{layout}.zarr",
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
        "wxpipe verify {params.src:q} {params.layout:q} --max-mem {params.max_mem}"
        " --lineage {output.record:q} --upstream {input.statistics:q} 2> {log:q}"


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
