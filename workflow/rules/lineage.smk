# The lineage catalogue: every record on disk (not only this config's) joined into JSON, a Graphviz graph and a
# static site in a folder of its own (its index.html opens from file://); the inputs are what makes the rule run
# last. `snakemake --report report.zip` embeds the whole site, its relative links intact.


rule lineage:
    input:
        demo=[paths.record("demo", "archive")] if CFG.demo is not None else [],
        init=[paths.record("init", d) for d in DATASETS],
        load=[r for d in DATASETS for r in smk.load_records(CFG, d)],
        stages=[getattr(rules, stage).output for stage in STAGES],
    output:
        catalogue=paths.catalogue("json"),
        site=report(
            directory(paths.site()),
            htmlindex="index.html",
            caption="../report/catalogue.rst",
            category="Catalogue",
            labels={"pages": "lineage catalogue"},
        ),
        dot=paths.catalogue("dot"),
    log:
        paths.log("lineage"),
    benchmark:
        paths.benchmark("lineage")
    resources:
        mem_mb=500,
        runtime=5,
    conda:
        "../../envs/data.yaml"
    shell:
        f"wxpipe lineage catalogue {paths.CATALOGUE} --records {paths.LINEAGE} 2> {{log:q}}"
