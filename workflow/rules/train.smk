# Training: a small PyTorch forecaster per configured run, logged to MLflow. A run with `site:` reads the
# dataset's copy at that file: site (bring the code to the data) and follows the copy's record.


rule train_model:
    input:
        unpack(lambda w: smk.training_records(CFG, w.run)),
    output:
        checkpoint="results/models/{run}/checkpoint.pt",
        record=temp(f"{PENDING}/train/{{run}}.json"),
    params:
        dataset=lambda w: smk.training_dataset(CFG, w.run),
        settings=lambda w: smk.settings(CFG, "training", w.run),
    threads: 2
    log:
        f"{LOGS}/train/{{run}}.log",
    benchmark:
        f"{BENCH}/train/{{run}}.tsv"
    resources:
        mem_mb=4000,
        runtime=120,
        # data-parallel ranks: HPC profiles set one per GPU (with mpi=srun, so the SLURM plugin leaves
        # the launch to `wxpipe train`, which starts them with srun); locally one process
        tasks=1,
    conda:
        f"../../envs/train-{GPU_STACK}.yaml"
    container:
        smk.container_image(f"train-{GPU_STACK}")
    shell:
        "wxpipe train {params.dataset:q} {output.checkpoint:q} --name {wildcards.run} --settings {params.settings:q}"
        " --ranks {resources.tasks} --cpus-per-rank {threads}"
        " --lineage {output.record:q} --upstream {input:q} 2> {log:q}"


rule train:
    input:
        expand(f"{PENDING}/train/{{run}}.json", run=RUNS),
    output:
        expand(f"{LINEAGE}/train/{{run}}.json", run=RUNS),
    log:
        f"{LOGS}/train.log",
    benchmark:
        f"{BENCH}/train.tsv"
    resources:
        mem_mb=200,
        runtime=5,
    conda:
        "../../envs/data.yaml"
    shell:
        "wxpipe publish {input:q} --to {output:q} 2> {log:q}"
