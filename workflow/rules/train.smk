# Training: a small PyTorch forecaster per configured run, logged to MLflow. A run with `site:` reads the
# dataset's copy at that file: site (bring the code to the data) and follows the copy's record; evaluation
# reads the same copy (smk.dataset_copy). A run with `loader.layout` trains from that layout instead (its
# copy at the site when one is transferred there: smk.training_source); evaluation still reads the dataset.
# The training state beside the checkpoint (results/models/<run>/checkpoint.state/) is deliberately not an
# output: Snakemake deletes the outputs of a failed job, and that state is what the rerun of a killed, stopped
# (SIGTERM/SIGUSR1: exit 75) or failed job continues from.


rule train_model:
    wildcard_constraints:
        run=smk.runs_pattern(CFG, "wxpipe"),
    input:
        dataset=lambda w: smk.training_source_records(CFG, w.run),
    output:
        checkpoint=paths.model("{run}"),
        loss=paths.loss("{run}", "json"),
        record=temp(paths.pending("train", "{run}")),
    params:
        dataset=lambda w: smk.training_source(CFG, w.run),
        settings=lambda w: smk.settings(CFG, "training", w.run),
    threads: 2
    log:
        paths.log("train", "{run}"),
    benchmark:
        paths.benchmark("train", "{run}")
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


# engine: anemoi runs train with anemoi-training in its environment (make anemoi-env; envs/train-anemoi.yaml,
# containers/train-anemoi.def). wxpipe runs there from the workflow's source tree (it is not installed in that env),
# starts anemoi-training with the overrides it owns, and a rerun continues anemoi's own run.
rule train_anemoi:
    wildcard_constraints:
        run=smk.runs_pattern(CFG, "anemoi"),
    input:
        dataset=lambda w: smk.training_source_records(CFG, w.run),
    output:
        checkpoint=paths.model("{run}"),
        loss=paths.loss("{run}", "json"),
        record=temp(paths.pending("train", "{run}")),
    params:
        dataset=lambda w: smk.training_source(CFG, w.run),
        settings=lambda w: smk.settings(CFG, "training", w.run),
        source=WXPIPE_SOURCE,
    threads: 2
    log:
        paths.log("train", "{run}"),
    benchmark:
        paths.benchmark("train", "{run}")
    resources:
        mem_mb=8000,
        runtime=120,
        tasks=1,
    conda:
        "../../envs/train-anemoi.yaml"
    container:
        smk.container_image("train-anemoi")
    shell:
        "PYTHONPATH={params.source:q}${{PYTHONPATH:+:$PYTHONPATH}} python -m wxpipe.cli train {params.dataset:q}"
        " {output.checkpoint:q} --name {wildcards.run} --settings {params.settings:q} --ranks {resources.tasks}"
        " --cpus-per-rank {threads} --lineage {output.record:q} --upstream {input:q} 2> {log:q}"


rule draw_loss_curve:
    input:
        loss=paths.loss("{run}", "json"),
    output:
        png=report(
            paths.loss("{run}", "png"),
            caption="../report/loss.rst",
            category="Training",
            subcategory="{run}",
        ),
    localrule: True
    log:
        paths.log("loss-curve", "{run}"),
    resources:
        mem_mb=500,
        runtime=5,
    conda:
        "../../envs/data.yaml"
    shell:
        "wxpipe loss-curve {input.loss:q} {output.png:q} 2> {log:q}"
