# Copies to the sites in config (file:, s3://, ssh://), each proven complete by a checksummed manifest; the copy's
# record carries its location. Credentials never pass through here. Datasets and layouts are copied before
# training (a run may read the copy); models (checkpoint, loss curve, evaluation outputs and their records,
# gathered by bundle_model) after their evaluation, in the stage transfer_models.
COPY = (
    "wxpipe copy {params.src:q} {params.dst:q} --threads {threads} {params.site} {params.mirror}"
    " --lineage {output.record:q} --upstream {input.upstream:q} 2> {log:q}"
)


rule copy_to_site:
    input:
        upstream=lambda w: smk_copies.transfer_source(CFG, w.site, w.name)[1],
    output:
        record=temp(paths.pending("transfer", paths.site_key("{site}", "{name}"))),
    params:
        src=lambda w: smk_copies.transfer_source(CFG, w.site, w.name)[0],
        dst=lambda w: smk_copies.site_location(CFG, w.site, w.name),
        site=lambda w: smk_copies.site_args(CFG, w.site),
        mirror=lambda w: smk_copies.mirror_args(CFG, w.site, w.name),
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
        COPY


rule copy_model_to_site:
    input:
        src=paths.bundle("{run}"),
        upstream=lambda w: smk_copies.model_records(w.run),
    output:
        record=temp(paths.pending("transfer_models", paths.site_key("{site}", "{run}"))),
    params:
        src=lambda w, input: input.src,
        dst=lambda w: smk_copies.model_location(CFG, w.site, w.run),
        site=lambda w: smk_copies.site_args(CFG, w.site),
        mirror=lambda w: smk_copies.mirror_args(CFG, w.site, paths.site_model_name(w.run)),
    threads: 4
    log:
        paths.log("transfer_models", paths.site_key("{site}", "{run}")),
    benchmark:
        paths.benchmark("transfer_models", paths.site_key("{site}", "{run}"))
    resources:
        mem_mb=1000,
        runtime=120,
    conda:
        "../../envs/data.yaml"
    shell:
        COPY


rule bundle_model:
    input:
        lambda w: list(smk_copies.bundle_files(w.run).values()),
    output:
        temp(directory(paths.bundle("{run}"))),
    params:
        files=lambda w: smk_copies.bundle_args(w.run),
    localrule: True
    log:
        paths.log("bundle", "{run}"),
    resources:
        mem_mb=200,
        runtime=5,
    conda:
        "../../envs/data.yaml"
    shell:
        "wxpipe bundle {output:q} {params.files} 2> {log:q}"
