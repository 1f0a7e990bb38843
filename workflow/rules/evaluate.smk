# Evaluation in two steps, with a file between them: predict_model rolls the checkpoint out over the evaluation
# period in its engine's environment (the only rule that loads a model) and writes the forecasts (Zarr v2);
# evaluate_model scores that file against the dataset copy the model was trained on (smk.dataset_copy), beside
# persistence, the climatology (compute_climatology, once per dataset) and a reference forecast, in the data
# environment: no engine is imported, so any engine that writes the file is scored. compare_runs puts the runs'
# scores.nc side by side.


rule compute_climatology:
    input:
        statistics=paths.record("statistics", "{dataset}"),
    output:
        climatology=directory(paths.climatology("{dataset}")),
        record=temp(paths.pending("climatology", "{dataset}")),
    params:
        dataset=lambda w: paths.dataset(w.dataset),
        settings=smk.settings(CFG, "evaluation") if CFG.evaluation else "{}",
    log:
        paths.log("climatology", "{dataset}"),
    benchmark:
        paths.benchmark("climatology", "{dataset}")
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/data.yaml"
    shell:
        "wxpipe climatology {params.dataset:q} {output.climatology:q} --settings {params.settings:q}"
        " --lineage {output.record:q} --upstream {input.statistics:q} 2> {log:q}"


rule predict_model:
    input:
        checkpoint=paths.model("{run}"),
        train=paths.record("train", "{run}"),
        dataset=lambda w: smk.dataset_copy_records(CFG, w.run),
    output:
        forecasts=directory(paths.forecasts("{run}")),
        record=temp(paths.pending("predict", "{run}")),
    params:
        dataset=lambda w: smk.dataset_copy(CFG, w.run),
        settings=smk.settings(CFG, "evaluation") if CFG.evaluation else "{}",
    threads: 2
    log:
        paths.log("predict", "{run}"),
    benchmark:
        paths.benchmark("predict", "{run}")
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        f"../../envs/train-{GPU_STACK}.yaml"
    container:
        smk.container_image(f"train-{GPU_STACK}")
    shell:
        "wxpipe predict {params.dataset:q} {input.checkpoint:q} {output.forecasts:q} --settings {params.settings:q}"
        " --name {wildcards.run} --threads {threads} --memory-mb {resources.mem_mb} --lineage {output.record:q} --upstream {input.train:q} {input.dataset:q} 2> {log:q}"


rule evaluate_model:
    input:
        unpack(lambda w: smk.evaluation_inputs(CFG, w.run)),
        forecasts=paths.forecasts("{run}"),
        predict=paths.record("predict", "{run}"),
        dataset=lambda w: smk.dataset_copy_records(CFG, w.run),
    output:
        scores=paths.evaluation("{run}", "scores.json"),
        table=paths.evaluation("{run}", "scores.nc"),
        scorecard=report(
            paths.evaluation("{run}", "scorecard.png"),
            caption="../report/scorecard.rst",
            category="Evaluation",
            subcategory="{run}",
        ),
        leads=report(
            paths.evaluation("{run}", "leads.png"),
            caption="../report/leads.rst",
            category="Evaluation",
            subcategory="{run}",
        ),
        maps=report(
            paths.evaluation("{run}", "maps.png"),
            caption="../report/maps.rst",
            category="Evaluation",
            subcategory="{run}",
        ),
        record=temp(paths.pending("evaluate", "{run}")),
    params:
        dataset=lambda w: smk.dataset_copy(CFG, w.run),
        out=paths.evaluation("{run}"),
        settings=smk.settings(CFG, "evaluation") if CFG.evaluation else "{}",
        baselines=lambda w: smk.evaluation_args(CFG, w.run),
        upstream=lambda w: smk.evaluation_upstream(CFG, w.run),
    threads: 2
    log:
        paths.log("evaluate", "{run}"),
    benchmark:
        paths.benchmark("evaluate", "{run}")
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/data.yaml"
    shell:
        "wxpipe evaluate {params.dataset:q} {input.forecasts:q} {params.out:q} --settings {params.settings:q}"
        " --name {wildcards.run} {params.baselines} --memory-mb {resources.mem_mb} --lineage {output.record:q}"
        " --upstream {params.upstream:q} 2> {log:q}"


rule compare_runs:
    input:
        scores=[paths.evaluation(r, "scores.nc") for r in smk.compared_runs(CFG)],
        records=[paths.record("evaluate", r) for r in smk.compared_runs(CFG)],
    output:
        table=paths.comparison("comparison.json"),
        netcdf=paths.comparison("comparison.nc"),
        scorecard=report(
            paths.comparison("scorecard.png"),
            caption="../report/compare.rst",
            category="Comparison",
        ),
        leads=report(
            paths.comparison("leads.png"),
            caption="../report/compare-leads.rst",
            category="Comparison",
        ),
        record=temp(paths.pending("compare", "runs")),
    params:
        out=lambda w, output: os.path.dirname(output.table),
        baseline=CFG.evaluation.baseline if CFG.evaluation else "persistence",
        resamples=CFG.evaluation.bootstrap if CFG.evaluation else 1000,
    log:
        paths.log("compare", "runs"),
    benchmark:
        paths.benchmark("compare", "runs")
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/data.yaml"
    shell:
        "wxpipe compare {params.out:q} {input.scores:q} --baseline {params.baseline:q} --resamples {params.resamples}"
        " --lineage {output.record:q} --upstream {input.records:q} 2> {log:q}"
