# Layouts: the dataset in another chunking (e.g. time series for point-wise models), as on HPC:
# rechunk_init writes the empty layout, rechunk_part jobs (layouts.<name>.parts) write disjoint
# shares of its target chunks, rechunk_layout verifies it region by region against the source and
# writes its record. The layout is written in place; the init and part outputs are markers.


rule rechunk_init:
    input:
        statistics=lambda w: smk.layout_upstream(CFG, w.layout),
    output:
        done=temp(touch(paths.marker("rechunk_init", "{layout}"))),
    params:
        src=lambda w: smk.layout_source(CFG, w.layout),
        layout=paths.layout("{layout}"),
        args=lambda w: smk.layout_args(CFG, w.layout),
    log:
        paths.log("rechunk_init", "{layout}"),
    benchmark:
        paths.benchmark("rechunk_init", "{layout}")
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/data.yaml"
    shell:
        "wxpipe rechunk-init {params.src:q} {params.layout:q} {params.args} 2> {log:q}"


rule rechunk_part:
    input:
        init=paths.marker("rechunk_init", "{layout}"),
    output:
        done=temp(touch(paths.marker("rechunk_part", paths.part("{layout}")))),
    params:
        src=lambda w: smk.layout_source(CFG, w.layout),
        layout=paths.layout("{layout}"),
        part=smk.part_arg,
        max_mem=smk.max_mem,
    log:
        paths.log("rechunk_part", paths.part("{layout}")),
    benchmark:
        paths.benchmark("rechunk_part", paths.part("{layout}"))
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
        statistics=lambda w: smk.layout_upstream(CFG, w.layout),
        parts=lambda w: smk.layout_markers(CFG, w.layout),
    output:
        record=temp(paths.pending("rechunk", "{layout}")),
    params:
        src=lambda w: smk.layout_source(CFG, w.layout),
        layout=paths.layout("{layout}"),
        max_mem=smk.max_mem,
    log:
        paths.log("rechunk", "{layout}"),
    benchmark:
        paths.benchmark("rechunk", "{layout}")
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        "../../envs/data.yaml"
    shell:
        "wxpipe verify {params.src:q} {params.layout:q} --max-mem {params.max_mem}"
        " --lineage {output.record:q} --upstream {input.statistics:q} 2> {log:q}"
