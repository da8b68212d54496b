"""Running a scan: its plan (`plan`, `bounds`), the checks before anything is written
(`checks`, `regimes`, `dryrun`), the store prepared (`prepare`), the embedded cluster
(`cluster`, `logs`), the workers' state (`job`, `worker`, `runner`), the run loop
(`simulate`) and the lazy dataset (`lazy`).

Nothing is imported here: a worker process that imports `jscan.pipeline.run.worker` must
not pull in the client side (the run loop, the live page and its web server).
"""
