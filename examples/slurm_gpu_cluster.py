"""A scan on a SLURM GPU cluster: one Dask worker per node, driving all of its GPUs.

Shows two ways to run jscan on SLURM (needs a SLURM cluster, jscan[cuda] on the nodes and a
store path on a file system every node and this machine can reach):

A. From Python with dask-jobqueue (`pip install dask-jobqueue`): a `SLURMCluster` submits
   one job per node; each job starts one worker process (`processes=1`) with 2 threads (one
   block is written while the next is simulated) and `--resources GPU=N`. The worker's JAX
   shards every block over all GPUs of its node. Then
   `simulate_scan(config, store, client=client)`.

B. By hand, with no dask-jobqueue: the batch script printed by `--dry-run` starts
   `dask scheduler --scheduler-file`, one `dask worker` per node with `srun`, and
   `jscan simulate cfg.toml --out /shared/scan.zarr --scheduler-file sched.json`.

Run it (on a SLURM login node):

    python examples/slurm_gpu_cluster.py --dry-run          # print both job scripts only
    python examples/slurm_gpu_cluster.py --nodes 4 --gpus-per-node 4 \\
        --out /shared/$USER/scan.zarr --config scan.toml --queue gpu --account myproj

A run killed by the wall-clock limit is finished with `resume=True` (or `jscan simulate ...
--resume`) from any node: its lock is an `flock` that ends with the process (on NFSv4, when
the dead client's lease expires).
"""

import argparse
import sys
from pathlib import Path

JOB_ENV = [  # shell lines run before the worker starts
    "# XLA takes 75 % of each GPU's memory at start-up; allocate on demand instead,",
    "export XLA_PYTHON_CLIENT_PREALLOCATE=false",
    "# or keep preallocating, capped per process:",
    "# export XLA_PYTHON_CLIENT_MEM_FRACTION=0.90",
]

MANUAL_SCRIPT = """\
#!/bin/bash
#SBATCH --job-name=jscan
#SBATCH --nodes={nodes}
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task={cpus}
#SBATCH --gres=gpu:{gpus}
#SBATCH --time={walltime}
{env}
SCHED=$SLURM_SUBMIT_DIR/scheduler-$SLURM_JOB_ID.json  # on the shared file system
dask scheduler --scheduler-file "$SCHED" &
while [ ! -f "$SCHED" ]; do sleep 1; done
srun dask worker --scheduler-file "$SCHED" --nthreads 2 --resources GPU={gpus} &
jscan simulate {config} --out {out} --scheduler-file "$SCHED"  # add --resume to finish one
"""


def slurm_cluster(args):
    from dask_jobqueue import SLURMCluster

    return SLURMCluster(
        queue=args.queue,
        account=args.account,
        walltime=args.walltime,
        cores=2,  # worker threads: one block simulated while the previous one is written
        processes=1,  # one worker process per node; it drives every GPU of the node
        job_cpu=args.cpus_per_node,  # CPUs booked per job (compression, Poisson noise)
        memory=args.memory,
        job_extra_directives=[f"--gres=gpu:{args.gpus_per_node}"],
        job_script_prologue=JOB_ENV,
        # A label for tasks that ask for GPUs; jscan's block tasks ask for none: each worker
        # runs its blocks sharded over all the GPUs of its node.
        worker_extra_args=["--resources", f"GPU={args.gpus_per_node}"],
        interface=args.interface,  # e.g. "ib0" when the nodes talk over InfiniBand
        log_directory=args.log_directory,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=2, help="SLURM jobs = worker nodes")
    parser.add_argument("--gpus-per-node", type=int, default=4)
    parser.add_argument("--cpus-per-node", type=int, default=16)
    parser.add_argument("--memory", default="64GB", help="worker memory per node")
    parser.add_argument("--walltime", default="02:00:00")
    parser.add_argument("--queue", help="SLURM partition")
    parser.add_argument("--account", help="SLURM account")
    parser.add_argument("--interface", help="network interface of the workers, e.g. ib0")
    parser.add_argument("--log-directory", help="where SLURM writes the job logs")
    parser.add_argument("--config", default="scan.toml", help="TOML config (on the shared fs)")
    parser.add_argument("--out", default="/shared/scan.zarr", help="store on the shared fs")
    parser.add_argument("--resume", action="store_true", help="finish the store's missing blocks")
    parser.add_argument("--dry-run", action="store_true", help="print the job scripts only")
    args = parser.parse_args(argv)

    manual = MANUAL_SCRIPT.format(
        nodes=args.nodes,
        cpus=args.cpus_per_node,
        gpus=args.gpus_per_node,
        walltime=args.walltime,
        env="\n".join(JOB_ENV),
        config=args.config,
        out=args.out,
    )
    try:
        import dask_jobqueue  # noqa: F401
    except ImportError:
        if not args.dry_run:
            sys.exit("this example needs dask-jobqueue: pip install dask-jobqueue")
        print("# dask-jobqueue is not installed: no SLURMCluster job script to show\n")
        print(f"# B. the hand-written batch script (sbatch it):\n{manual}")
        return

    from distributed import Client

    from jscan import simulate_scan

    with slurm_cluster(args) as cluster:
        if args.dry_run:  # no job is submitted: just show what would be
            script = cluster.job_script()
            print(f"# A. the job script SLURMCluster submits once per node:\n{script}")
            print(f"# B. the hand-written batch script (sbatch it):\n{manual}")
            return
        if not Path(args.config).is_file():
            sys.exit(f"no config at {args.config}; write one (see README.md, Config)")
        cluster.scale(jobs=args.nodes)  # one job per node
        with Client(cluster) as client:
            print(f"dashboard: {client.dashboard_link}", flush=True)
            client.wait_for_workers(1)  # blocks start as soon as one node is up
            ds = simulate_scan(args.config, args.out, client=client, resume=args.resume)
            print(ds)


if __name__ == "__main__":
    main()
