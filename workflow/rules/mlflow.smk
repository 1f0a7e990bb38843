# MLflow offline: a run trained on a compute node without internet (training.<run>.mlflow.mode: offline, or
# fallback when the server did not answer) logged to a store beside its model (paths.offline_store), and an
# evaluation likewise (evaluation.mlflow.mode) to a store in its evaluation folder (paths.evaluation_store).
# These rules copy them to the tracking server after the job, on the controller (the login node reaches the
# server); the train and evaluate stage targets wait for them (smk.stage_waits). A fallback run that logged
# online has no store: the marker says so. Credentials come from MLFLOW_TRACKING_USERNAME/_PASSWORD/_TOKEN in
# the controller's env.


rule sync_mlflow:
    input:
        checkpoint=paths.model("{run}"),
    output:
        marker=temp(paths.marker("mlflow-sync", "{run}")),
    params:
        store=lambda w: smk.offline_store(CFG, w.run),
        settings=lambda w: smk.settings(CFG, "training", w.run),
    localrule: True
    log:
        paths.log("mlflow-sync", "{run}"),
    benchmark:
        paths.benchmark("mlflow-sync", "{run}")
    resources:
        mem_mb=1000,
        runtime=30,
    conda:
        "../../envs/data.yaml"
    shell:
        "wxpipe mlflow-sync {params.store:q} --settings {params.settings:q} --marker {output.marker:q} 2> {log:q}"


use rule sync_mlflow as sync_mlflow_evaluation with:
    input:
        scores=paths.evaluation("{run}", "scores.json"),
    output:
        marker=temp(paths.marker("mlflow-sync-evaluation", "{run}")),
    params:
        store=paths.evaluation_store("{run}"),
        settings=smk.settings(CFG, "evaluation") if CFG.evaluation else "{}",
    localrule: True
    log:
        paths.log("mlflow-sync-evaluation", "{run}"),
    benchmark:
        paths.benchmark("mlflow-sync-evaluation", "{run}")
