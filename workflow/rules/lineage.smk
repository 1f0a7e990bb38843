# The lineage catalogue: every rule's record joined into JSON, a Graphviz graph and an HTML page.


rule lineage:
    input:
        demo=[f"{LINEAGE}/demo/archive.json"] if CFG.demo is not None else [],
        init=expand(f"{LINEAGE}/init/{{dataset}}.json", dataset=DATASETS),
        load=[f"{LINEAGE}/load/{d}/part-{p}.json" for d in DATASETS for p in smk.part_names(CFG, d)],
        stages=[
            rules.dataset.output,
            rules.statistics.output,
            rules.rechunk.output,
            rules.transfer.output,
            rules.train.output,
            rules.evaluate.output,
        ],
    output:
        catalogue="results/catalogue/catalogue.json",
        html=report("results/catalogue/catalogue.html", caption="../report/catalogue.rst", category="Lineage"),
        dot="results/catalogue/catalogue.dot",
    log:
        f"{LOGS}/lineage.log",
    benchmark:
        f"{BENCH}/lineage.tsv"
    resources:
        mem_mb=500,
        runtime=5,
    conda:
        "../../envs/data.yaml"
    shell:
        "wxpipe lineage results/catalogue {input:q} 2> {log:q}"
