# Copies of datasets and layouts to the sites in config (file:, s3://, ssh://), each proven complete by a
# checksummed manifest; the copy's record carries its location. Credentials never pass through here.


rule copy_to_site:
    input:
        upstream=lambda w: smk.transfer_source(CFG, w.site, w.name)[1],
    output:
        record=temp(paths.pending("transfer", paths.site_key("{site}", "{name}"))),
    params:
        src=lambda w: smk.transfer_source(CFG, w.site, w.name)[0],
        dst=lambda w: smk.site_location(CFG, w.site, w.name),
        site=lambda w: smk.site_args(CFG, w.site),
        mirror=lambda w: smk.mirror_args(CFG, w.site, w.name),
    threads: 4
    log:
        paths.log("transfer", paths.site_key("{site}", "{name}")),
    benchmark:
        paths.benchmark("transfer", paths.site_key("{site}", "{name}"))
    resources:
        mem_mb=1000,
        runtime=120,
    conda:
        "../../envs/data.yaml"
    shell:
        "wxpipe copy {params.src:q} {params.dst:q} --threads {threads} {params.site} {params.mirror}"
        " --lineage {output.record:q} --upstream {input.upstream:q} 2> {log:q}"
