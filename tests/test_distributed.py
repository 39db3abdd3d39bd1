"""The same lazy fit under a two-process dask.distributed cluster gives the in-process maps."""

import dask.array as da
import numpy as np
import pytest
from conftest import gaussian_cube

import hyperlum as hl

distributed = pytest.importorskip("distributed")
X = np.linspace(600.0, 820.0, 256)


def test_two_process_local_cluster_matches_in_process(rng, tmp_path):
    """A lazy fit computed under a Client, and hl.fit(scheduler=ADDRESS) of data in memory
    and of a dask array (both sent to the workers chunk by chunk) give the in-process maps."""
    _, mu = gaussian_cube(rng, (8, 9), X)
    counts = da.from_array(rng.poisson(mu).astype(np.uint16), chunks=(4, 3, -1))
    local = hl.fit(counts, axis=X, device="cpu", estimator="mle").compute()
    small = 4 * 9 * X.size * 8  # 2 chunks
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        remote = hl.fit(counts, axis=X, device="cpu", estimator="mle").compute()
        assert len(client.scheduler_info()["workers"]) == 2
        fits = {"compute": remote}
        with distributed.get_task_stream(client) as tasks:
            for kind, data in (("eager", counts.compute()), ("lazy, out", counts)):
                fits[kind] = hl.fit(
                    data,
                    axis=X,
                    device="cpu",
                    estimator="mle",
                    chunk_bytes=small,
                    scheduler=cluster.scheduler_address,
                    out=tmp_path / "maps.zspy" if "out" in kind else None,
                )
        fitted = [t for t in tasks.data if str(t["key"]).startswith("fit_block")]
        assert len(fitted) == 4  # 2 chunks each, on the workers
    for kind, got in fits.items():
        for name in local.names:
            np.testing.assert_array_equal(
                got.maps[name], local.maps[name], err_msg=f"{kind} {name}"
            )
