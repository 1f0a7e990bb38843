# Evaluation in two steps, with a file between them: predict_model rolls the checkpoint out over the evaluation
# period in its engine's environment (the only rule that loads a model) and writes the forecasts (Zarr v2);
# evaluate_model scores that file against the dataset copy the model was trained on (smk.dataset_copy) and
# persistence, in the data environment: no engine is imported, so any engine that writes the file is scored.


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
        " --name {wildcards.run} --threads {threads} --lineage {output.record:q} --upstream {input.train:q} {input.dataset:q} 2> {log:q}"


rule evaluate_model:
    input:
        forecasts=paths.forecasts("{run}"),
        predict=paths.record("predict", "{run}"),
        dataset=lambda w: smk.dataset_copy_records(CFG, w.run),
    output:
        scores=paths.evaluation("{run}", "scores.json"),
        scorecard=report(
            paths.evaluation("{run}", "scorecard.png"),
            caption="../report/scorecard.rst",
            category="Evaluation",
        ),
        record=temp(paths.pending("evaluate", "{run}")),
    params:
        dataset=lambda w: smk.dataset_copy(CFG, w.run),
        out=paths.evaluation("{run}"),
        settings=smk.settings(CFG, "evaluation") if CFG.evaluation else "{}",
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
        " --name {wildcards.run} --lineage {output.record:q} --upstream {input.predict:q} {input.dataset:q} 2> {log:q}"
