"""Fits on a dask.distributed cluster for :func:`hyperlum.fitting.engine.fit_chunks`.

For data read from a file, each worker opens the file itself (once per worker) and reads the
chunks it fits, so that no chunk of data travels through this process; only the fitted rows
come back. Data held in this process goes to the workers chunk by chunk (a dask array is
computed on the cluster). A scheduler address is probed first: ``Client`` alone may wait for
ever on a port that accepts and says nothing.
"""

import functools
import json
import os
from pathlib import Path

from hyperlum.fitting import resume
from hyperlum.io.cube import as_numpy


@functools.lru_cache(maxsize=4)
def _open_lazy(path, hints_json):
    from hyperlum.io.cube import as_cube
    from hyperlum.io.loader import load

    return as_cube(load(path, lazy=True, **json.loads(hints_json))).data


def fit_file_chunk(path, hints_json, channels, fit, nav):
    """Read one chunk of a file and fit it: what a dask.distributed worker runs.

    ``fit(block)`` gives the rows (a picklable partial of the kernel); the file is opened once
    per worker.
    """
    data = _open_lazy(path, hints_json)
    return fit(as_numpy(data[(*nav, channels)]))


def probe_scheduler(address, *, timeout):
    """Raise OSError unless ``address`` answers as a dask scheduler within ``timeout`` s.

    ``Client`` alone may wait for ever on a port that accepts and says nothing.
    """
    import asyncio

    from distributed.comm import connect

    async def identity():
        comm = await connect(address, timeout=2 * timeout)  # the wait_for below decides
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    try:
        reply = asyncio.run(asyncio.wait_for(identity(), timeout))
    except asyncio.TimeoutError:
        raise OSError(
            f"the dask scheduler {address} does not answer within {timeout:g} s"
        ) from None
    except OSError as err:  # refused, unreachable, reset
        raise OSError(f"cannot reach the dask scheduler {address}: {err}") from None
    except Exception as err:  # garbage where a dask message should be
        reply = type(err).__name__
    if not isinstance(reply, dict) or reply.get("type") != "Scheduler":
        raise OSError(f"{address} does not answer as a dask scheduler")


def fit_chunks(cube, spec, kernel, grid, todo, done, scheduler, source, timeout):
    """Fit chunks ``todo`` of ``grid`` on a dask.distributed cluster, each worker reading its
    own chunks from ``source`` (None: the chunks of ``cube`` go to the workers);
    ``done(idx, rows)`` as each comes back (see :func:`hyperlum.fitting.engine.run_chunks`).
    ``scheduler``: ``("local", n)`` or ``("address", address)``; ``timeout``: seconds for the
    address to answer."""
    from dask.distributed import Client, LocalCluster, as_completed

    from hyperlum.io.cube import is_dask

    kind, value = scheduler
    cluster = None
    try:
        if kind == "local":
            cluster = LocalCluster(
                n_workers=value, threads_per_worker=1, processes=True, dashboard_address=None
            )
            client = Client(cluster)
        else:
            client = Client(value, timeout=f"{timeout}s")
    except Exception as err:
        if cluster is not None:
            cluster.close()
        raise OSError(f"cannot reach the dask scheduler {value}: {err}") from None
    if kind == "local":  # N single-task workers share the CPUs of this machine
        spec = spec._replace(threads=max(1, len(os.sched_getaffinity(0)) // value))
    fit = functools.partial(kernel, x=cube.x, spec=spec)
    try:
        if source is None:

            def submit(nav):
                block = cube.data[nav]
                return client.submit(
                    fit, client.compute(block) if is_dask(block) else as_numpy(block), pure=False
                )
        else:
            hints_json = json.dumps(source.hints, sort_keys=True)
            path = str(Path(source.path).resolve())

            def submit(nav):
                return client.submit(
                    fit_file_chunk, path, hints_json, source.channels, fit, nav, pure=False
                )

        futures = {submit(resume.block_slices(grid, idx)): idx for idx in todo}
        for fut in as_completed(futures):
            done(futures[fut], fut.result())
            fut.release()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
