# wxpipe: GRIB archive -> ML-ready Zarr -> statistics -> layouts -> sites -> training -> evaluation,
# every output with a lineage record. Stage targets: dataset, statistics, rechunk, transfer, train,
# evaluate, transfer_models, lineage. Logic lives in the `wxpipe` package; rules only say what flows where.
import os
import sys

from snakemake.utils import min_version

from wxpipe import paths, smk, smk_copies
from wxpipe.errors import WxpipeError
from wxpipe.provenance import CONFIG_HASH

min_version("9.0")


# The demo is the config only when none is given: `snakemake --configfile my.yaml` builds exactly what
# my.yaml declares (Snakemake would otherwise merge my.yaml into the demo). `--config key=value` still
# overrides single values of whichever config is in force.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


try:  # config and recipes: a mistake is one message naming file, key and line, not a traceback
    CFG = smk.load_config(config, workflow.configfiles, check_inputs=workflow.is_main_process)
except WxpipeError as exc:
    sys.exit(f"wxpipe: {exc}")
# HPC profiles charge jobs to $WXPIPE_ACCOUNT: say so before submitting anything if it is unset
for _var in smk.unset_account_variables(workflow):
    sys.exit(
        f"wxpipe: the profile charges SLURM jobs to ${_var}, which is not set: `export {_var}=<your project>` "
        "(e.g. project_465000123 on LUMI); see docs/sites/"
    )
# every job (a subprocess here, or a SLURM job that parses this file again) records the hash of this config
os.environ[CONFIG_HASH] = smk.config_hash(CFG)
DATASETS = list(CFG.datasets)
STAGES = smk.stages(CFG)  # stage target -> the keys of the records it publishes
GPU_STACK = smk.gpu_stack()  # cuda or rocm (LUMI): the training rules' conda env and container
WXPIPE_SOURCE = os.path.join(workflow.basedir, "workflow")  # the package's source: envs without wxpipe installed

wildcard_constraints:
    dataset=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    layout=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    run=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    site=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    name=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    part=r"\d+-of-\d+",


# With --sdm apptainer every rule runs in the data image unless it names its own (training rules).
container: smk.container_image("data")


# Stage targets only copy small JSON records and the catalogue reads them; init, finalise, rechunk_init
# and the statistics merge write or check metadata and read a few small files, in seconds: on a cluster
# these run in the controller rather than waiting in the queue.
localrules:
    all,
    lineage,
    init,
    finalise,
    compute_statistics,
    rechunk_init,
    dataset,
    statistics,
    rechunk,
    transfer,
    train,
    predict,
    climatology,
    evaluate,
    compare,
    transfer_models,


# Stage targets (`snakemake statistics`, `snakemake -R train`), one definition for them all: each publishes
# its stage's pending records to results/lineage/<stage>/, so `-R <stage>` reruns the jobs that wrote them.
for _stage, _keys in STAGES.items():

    rule:
        name:
            _stage
        input:
            records=[paths.pending(_stage, k) for k in _keys],
            waits=smk.stage_waits(CFG, _stage),
        output:
            [paths.record(_stage, k) for k in _keys],
        log:
            paths.log(_stage),
        benchmark:
            paths.benchmark(_stage)
        resources:
            mem_mb=200,
            runtime=5,
        conda:
            "envs/data.yaml"
        shell:
            "wxpipe publish {input.records:q} --to {output:q} 2> {log:q}"


include: "workflow/rules/demo.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/statistics.smk"
include: "workflow/rules/rechunk.smk"
include: "workflow/rules/transfer.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/mlflow.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/lineage.smk"


rule all:
    default_target: True
    input:
        rules.lineage.output,
