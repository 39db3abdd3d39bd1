"""The same lazy fit under a two-process dask.distributed cluster gives the in-process maps."""

import dask.array as da
import numpy as np
import pytest
from conftest import gaussian_cube

import hyperlum as hl

distributed = pytest.importorskip("distributed")
X = np.linspace(600.0, 820.0, 256)


def test_two_process_local_cluster_matches_in_process(rng):
    _, mu = gaussian_cube(rng, (8, 9), X)
    counts = da.from_array(rng.poisson(mu).astype(np.uint16), chunks=(4, 3, -1))
    local = hl.fit(counts, axis=X, device="cpu", estimator="mle").compute()
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        remote = hl.fit(counts, axis=X, device="cpu", estimator="mle").compute()
        assert len(client.scheduler_info()["workers"]) == 2
    for name in local.names:
        np.testing.assert_array_equal(remote.maps[name], local.maps[name], err_msg=name)
