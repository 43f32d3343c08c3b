"""`explorer embed --ray`: the Ray Data pipeline on a local 2-CPU Ray instance gives the local
path's embeddings, marks unreadable images the same way, and never makes a partial run current;
the shard merge and the actor plan without Ray."""

import socket

import numpy as np
import pytest

from explorer import workflow
from explorer.cli import main
from explorer.cluster import ray_embed
from explorer.cluster.ray_embed import ActorPlan, embed_with_ray, plan_actors
from explorer.cluster.shards import ShardError, merge_shards, write_shard
from explorer.jobs import Cancelled, CancelToken
from explorer.ssl.checkpoint import save_checkpoint
from explorer.ssl.encoder import untrained_encoder
from explorer.store import Project
from tests.blobs import write_blobs


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="CI installs ray[data] with the test extra")
    pytest.importorskip("ray.data")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


@pytest.fixture
def collection(tmp_path):
    """A scanned project of 45 blob images, one of them damaged after the scan, and a
    checkpoint of an untrained small CNN at 16 px."""
    folder = tmp_path / "blobs"
    write_blobs(folder, per_class=15, size=24)
    encoder = untrained_encoder("small-cnn", 16, device="cpu")
    checkpoint = tmp_path / "encoder.pt"
    state = {"encoder": encoder.backbone.state_dict(), "backbone": "small-cnn", "feature_dim": encoder.feature_dim}
    save_checkpoint({**state, "image_size": 16, "epoch": 0, "config": {}}, checkpoint)
    with Project(folder) as project:
        workflow.scan(project)
    (folder / "img-0007.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")  # broken after the scan
    return folder, checkpoint


def test_ray_embeddings_match_the_local_path(local_ray, collection):
    folder, checkpoint = collection
    with Project(folder) as project:
        reports = []
        ray_run = embed_with_ray(project, str(checkpoint), batch_size=8, actors=2, progress=reports.append)
        unreadable = {item.path: item.error for item in project.unreadable()}
        local_run = workflow.embed(project, str(checkpoint), device="cpu")

        assert unreadable == {"img-0007.png": unreadable["img-0007.png"]}
        assert "PIL" in unreadable["img-0007.png"]
        ours, theirs = project.run(ray_run), project.run(local_run)
        assert ours.status == "done" and ours.params == {k: theirs.params.get(k) for k in ours.params}
        assert {"encoder", "backbone", "image_size"} <= set(ours.params)
        assert ours.metrics["ray_actors"] == 2 and ours.metrics["shards"] == 6  # 45 images in batches of 8
        ids = project.load_run_array(ray_run, "item_ids")
        assert len(ids) == 44 and np.array_equal(ids, project.load_run_array(local_run, "item_ids"))
        vectors = project.load_run_array(ray_run, "embeddings")
        assert vectors.dtype == np.float32 and vectors.shape == (44, ours.metrics["dim"])
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        assert np.abs(vectors - project.load_run_array(local_run, "embeddings")).max() < 1e-4
        assert sorted(p.name for p in project.run_dir(ray_run).iterdir()) == ["embeddings.npy", "item_ids.npy"]
        embed_reports = [r for r in reports if r.step == "embed"]
        assert embed_reports[-1].done == embed_reports[-1].total == 45


def test_cli_ray_with_separate_decode_tasks(local_ray, collection, monkeypatch, capsys):
    """The GPU layout (decode tasks, then actors; pixels cross between processes), on CPU."""
    folder, _ = collection
    separate = ActorPlan(count=1, num_gpus=0, num_cpus=0.5, device="cpu", threads=1, decode_in_actor=False)
    monkeypatch.setattr(ray_embed, "plan_actors", lambda resources, device, actors: separate)
    assert main(["embed", str(folder), "--encoder", "pixels", "--ray", "--batch-size", "16"]) == 0
    assert "ray_actors=1" in capsys.readouterr().out
    with Project(folder) as project:
        ray_run = project.latest_run("embed").id
        local_run = workflow.embed(project, "pixels")
        assert np.array_equal(
            project.load_run_array(ray_run, "item_ids"), project.load_run_array(local_run, "item_ids")
        )
        difference = project.load_run_array(ray_run, "embeddings") - project.load_run_array(local_run, "embeddings")
        assert np.abs(difference).max() < 1e-6
        assert [item.path for item in project.unreadable()] == ["img-0007.png"]


def test_cancelled_ray_run_leaves_the_previous_embeddings_current(local_ray, collection):
    folder, checkpoint = collection
    cancel = CancelToken()

    def cancel_after_first_batch(report):
        if report.step == "embed" and report.done > 0:
            cancel.cancel()

    with Project(folder) as project:
        with pytest.raises(ValueError, match="device auto, cpu or cuda"):
            embed_with_ray(project, "pixels", device="mps")
        assert project.runs("embed") == []  # refused before a run was recorded
        before = workflow.embed(project, "pixels")
        with pytest.raises(Cancelled):
            embed_with_ray(project, str(checkpoint), batch_size=8, progress=cancel_after_first_batch, cancel=cancel)
        stopped = project.runs("embed")[-1]
        assert stopped.status == "cancelled"
        assert project.latest_run("embed").id == before
        assert not (project.run_dir(stopped.id) / ray_embed.SHARD_FOLDER).exists()


def test_bad_input_named(collection, monkeypatch, capsys):
    folder, _ = collection
    assert main(["embed", str(folder), "--ray", "--from", "x.npy"]) == 1
    assert "--ray" in capsys.readouterr().err
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # as if ray were not installed
    with Project(folder) as project, pytest.raises(ray_embed.RayUnavailable, match=r"embedding-explorer\[ray\]"):
        embed_with_ray(project, "pixels")
    with Project(folder) as project:
        assert project.runs("embed") == []  # nothing recorded


def test_unreachable_cluster_named_at_once():
    class NotStarted:
        def is_initialized(self):
            return False

        def init(self, **kwargs):
            raise AssertionError("Ray must not be asked to connect: it retries for minutes")

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(workflow.WorkflowError, match=f"no Ray cluster answers at 127.0.0.1:{port}"):
        ray_embed.connect(NotStarted(), f"127.0.0.1:{port}")


def test_plan_one_actor_per_gpu_or_a_small_cpu_pool():
    assert plan_actors({"CPU": 32, "GPU": 4}) == ActorPlan(4, 1, 1, "cuda", 1, decode_in_actor=False)
    assert plan_actors({"CPU": 16, "GPU": 4}, device="cpu").device == "cpu"
    assert plan_actors({"CPU": 2}) == ActorPlan(1, 0, 2, "cpu", 2, decode_in_actor=True)
    assert plan_actors({"CPU": 16}) == ActorPlan(4, 0, 4, "cpu", 4, decode_in_actor=True)
    assert plan_actors({"CPU": 2}, actors=2).threads == 1
    with pytest.raises(ValueError, match="no GPU"):
        plan_actors({"CPU": 8}, device="cuda")
    with pytest.raises(ValueError, match="has 2 GPU"):
        plan_actors({"CPU": 8, "GPU": 2}, actors=3)
    with pytest.raises(ValueError, match="has 2 CPU"):
        plan_actors({"CPU": 2}, actors=3)
    with pytest.raises(ValueError, match="device auto, cpu or cuda"):
        plan_actors({"CPU": 2}, device="cuda:1")


def test_merge_in_item_order_with_retried_and_failed_batches(tmp_path):
    shards = tmp_path / "shards"
    vectors = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    write_shard(shards, np.array([5, 6, 8, 9]), vectors[[5, 6, 8, 9]], np.array([7]), ["broken or truncated image"])
    write_shard(shards, np.array([0, 1, 2, 3, 4]), vectors[:5], np.array([], np.int64), [])
    write_shard(shards, np.array([0, 1, 2, 3, 4]), vectors[:5], np.array([], np.int64), [])  # a retry: same file
    write_shard(shards, np.array([7]), vectors[[7]], np.array([], np.int64), [])  # a later try that worked
    out = tmp_path / "embeddings.npy"
    merged = merge_shards(shards, 10, 4, out)
    assert merged.shards == 3 and merged.failed == {} and merged.rows.tolist() == list(range(10))
    assert np.array_equal(np.load(out), vectors)

    (shards / "shard-0000000007-000001.npz").unlink()
    merged = merge_shards(shards, 10, 4, out)
    assert merged.failed == {7: "broken or truncated image"} and merged.rows.tolist() == [0, 1, 2, 3, 4, 5, 6, 8, 9]
    assert np.array_equal(np.load(out), vectors[merged.rows])

    (shards / "shard-0000000000-000005.npz").unlink()
    with pytest.raises(ShardError, match="5 of 10 images are in no shard"):
        merge_shards(shards, 10, 4, tmp_path / "other.npy")
    assert not (tmp_path / "other.npy").exists()
