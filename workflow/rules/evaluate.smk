# Evaluation: area-weighted RMSE of each trained model and of persistence, per variable and lead.


rule evaluate_model:
    input:
        checkpoint="results/models/{run}/checkpoint.pt",
        train=f"{LINEAGE}/train/{{run}}.json",
    output:
        scores="results/evaluation/{run}/scores.json",
        scorecard=report(
            "results/evaluation/{run}/scorecard.png",
            caption="../report/scorecard.rst",
            category="Evaluation",
        ),
        record=temp(f"{PENDING}/evaluate/{{run}}.json"),
    params:
        dataset=lambda w: f"results/datasets/{CFG.training[w.run].dataset}.zarr",
        out="results/evaluation/{run}",
        settings=smk.settings(CFG, "evaluation") if CFG.evaluation else "{}",
    threads: 2
    log:
        f"{LOGS}/evaluate/{{run}}.log",
    benchmark:
        f"{BENCH}/evaluate/{{run}}.tsv"
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        f"../../envs/train-{GPU_STACK}.yaml"
    container:
        smk.container_image(f"train-{GPU_STACK}")
    shell:
        "wxpipe evaluate {params.dataset:q} {input.checkpoint:q} {params.out:q} --settings {params.settings:q}"
        " --lineage {output.record:q} --upstream {input.train:q} 2> {log:q}"


rule evaluate:
    input:
        expand(f"{PENDING}/evaluate/{{run}}.json", run=RUNS),
    output:
        expand(f"{LINEAGE}/evaluate/{{run}}.json", run=RUNS),
    log:
        f"{LOGS}/evaluate.log",
    benchmark:
        f"{BENCH}/evaluate.tsv"
    resources:
        mem_mb=200,
        runtime=5,
    conda:
        "../../envs/data.yaml"
    shell:
        "wxpipe publish {input:q} --to {output:q} 2> {log:q}"
