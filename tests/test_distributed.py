"""torchrun with 2 CPU processes (gloo): ranks stay in sync, rank 0 alone writes, resume is exact."""

from __future__ import annotations

import contextlib
import csv
import datetime
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

WORKER = Path(__file__).with_name("ddp_worker.py")


def _torchrun(out: Path, pipeline: str, mode: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(WORKER), str(out), pipeline, mode]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]


@pytest.mark.parametrize("pipeline", ["memory", "loader"])
def test_ddp_two_processes_sync_and_resume(tmp_path: Path, pipeline: str) -> None:
    full, cut = tmp_path / "full", tmp_path / "cut"
    _torchrun(full, pipeline, "full")
    ranks = [torch.load(full / f"rank{r}-full.pt", weights_only=True) for r in (0, 1)]
    buffers = {n for n in ranks[0] if "running_" in n or n.endswith("num_batches_tracked")}
    for name, tensor in ranks[0].items():  # BN statistics are per rank between DDP's broadcasts from rank 0
        if name not in buffers:
            assert torch.equal(tensor, ranks[1][name]), f"{name} differs between ranks"
    rows = list(csv.DictReader((full / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]  # one writer: no duplicated rows
    assert json.loads((full / "env.json").read_text())["world_size"] == 2
    assert sorted(p.name for p in full.glob("*.pt")) == ["best.pt", "last.pt", "rank0-full.pt", "rank1-full.pt"]

    _torchrun(cut, pipeline, "stop")
    _torchrun(cut, pipeline, "resume")
    resumed = torch.load(cut / "rank0-resume.pt", weights_only=True)
    for name, tensor in ranks[0].items():
        assert torch.equal(tensor, resumed[name]), f"{name} differs after a DDP resume"


def _worker_pids(launcher: int) -> dict[int, int]:
    """RANK -> pid of the worker processes torchrun started."""
    children = Path(f"/proc/{launcher}/task/{launcher}/children").read_text().split()
    ranks = {}
    for pid in map(int, children):
        environ = dict(
            item.split("=", 1) for item in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in item
        )
        if "RANK" in environ:
            ranks[int(environ["RANK"])] = pid
    return ranks


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc to find torchrun's workers")
def test_a_stalled_rank_ends_the_job_within_the_timeout(tmp_path: Path) -> None:
    """SIGSTOP one of two ranks mid-training: the other's collective fails after --dist-timeout, it prints one
    line naming its rank and the cause, and torchrun ends the job: no hang."""
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m",
           "compactnets", "train", "resnet20_cifar", "--data", "digits", "--epochs", "200", "--batch-size", "32",
           "--out", str(out), "--dist-timeout", "10", "--log-every", "1000"]  # fmt: skip
    job = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while not (out / "env.json").is_file():  # rank 0 writes it once every rank has joined
            assert job.poll() is None and time.monotonic() < deadline, "the job did not start"
            time.sleep(0.5)
        time.sleep(2)
        stalled = _worker_pids(job.pid)[1]
        os.kill(stalled, signal.SIGSTOP)
        stopped_at = time.monotonic()
        _, stderr = job.communicate(timeout=180)
        elapsed = time.monotonic() - stopped_at
    finally:
        job.kill()
        job.wait()
    assert job.returncode != 0
    assert "compactnets: rank 0: " in stderr and "--dist-timeout 10 s" in stderr, stderr[-2000:]
    print(f"the job ended {elapsed:.1f} s after the stall")
    assert 10 <= elapsed < 120, f"the job ended {elapsed:.0f} s after the stall"


def _elastic_cmd(out: Path) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
            "--max-restarts", "2", "-m", "compactnets", "train", "resnet20_cifar", "--data", "digits",
            "--epochs", "3", "--batch-size", "32", "--train-subset", "1024", "--deterministic", "--resume", "auto",
            "--out", str(out), "--log-every", "1000"]  # fmt: skip


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc to find torchrun's workers")
def test_an_elastic_restart_after_a_killed_worker_continues_exactly(tmp_path: Path) -> None:
    """SIGKILL one of two workers mid-epoch under ``torchrun --max-restarts 2 ... --resume auto``: torchrun
    restarts both with the same command, they continue from last.pt, and the final weights equal an
    uninterrupted 2-process run's bit for bit."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    plain = subprocess.run(_elastic_cmd(tmp_path / "plain"), capture_output=True, text=True, env=env, timeout=600)
    assert plain.returncode == 0, plain.stderr[-3000:]
    out = tmp_path / "killed"
    job = subprocess.Popen(_elastic_cmd(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 300
        while not _checkpointed_epoch(out / "last.pt") >= 1:  # epoch 1 is saved; epoch 2 has started
            assert job.poll() is None and time.monotonic() < deadline, "the job did not reach epoch 2"
            time.sleep(0.2)
        time.sleep(1.0)
        started = (out / "env.json").stat().st_mtime
        os.kill(_worker_pids(job.pid)[1], signal.SIGKILL)
        killed_at = time.time()
        while (out / "env.json").stat().st_mtime == started:  # rank 0 of the restarted job rewrites it
            assert job.poll() is None and time.monotonic() < deadline, "the job was not restarted"
            time.sleep(0.05)
        continued = (out / "env.json").stat().st_mtime - killed_at
        _, stderr = job.communicate(timeout=300)
    finally:
        job.kill()
        job.wait()
    assert job.returncode == 0, stderr[-3000:]
    print(f"the restarted job continued {continued:.1f} s after the kill")
    final = [torch.load(d / "last.pt", weights_only=True) for d in (tmp_path / "plain", out)]
    assert final[1]["epoch"] == 3 and [r["epoch"] for r in final[1]["history"]] == [1, 2, 3]
    for name, tensor in final[0]["state_dict"].items():
        assert torch.equal(tensor, final[1]["state_dict"][name]), f"{name} differs after the elastic restart"
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]


def _checkpointed_epoch(path: Path) -> int:
    try:
        return int(torch.load(path, weights_only=True)["epoch"])
    except (OSError, RuntimeError, EOFError, KeyError):
        return 0


def test_a_restarted_multi_node_job_is_told_how_to_avoid_the_shared_store_hang(monkeypatch: pytest.MonkeyPatch) -> None:
    from compactnets.errors import UsageError
    from compactnets.train import DistInfo, _restart_store

    for key, value in {"TORCHELASTIC_RESTART_COUNT": "1", "TORCHELASTIC_USE_AGENT_STORE": "True",
                       "GROUP_WORLD_SIZE": "2"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    with pytest.raises(UsageError, match="TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1"):
        _restart_store(DistInfo(0, 4, 0), datetime.timedelta(seconds=1))
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "0")  # a first attempt uses env:// as it is
    assert _restart_store(DistInfo(0, 4, 0), datetime.timedelta(seconds=1)) is None


NETNS = ("cn-host-a", "cn-host-b")
ADDRS = ("10.231.7.1", "10.231.7.2")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def two_hosts() -> Any:
    """Two network namespaces joined by a veth pair: two 'hosts' whose traffic stays between them."""
    if os.geteuid() != 0 or subprocess.run(["ip", "netns", "add", NETNS[0]], capture_output=True).returncode != 0:
        pytest.skip("cannot create network namespaces here (needs root and iproute2)")
    try:
        _ip("netns", "add", NETNS[1])
        _ip("link", "add", "cn-veth-a", "type", "veth", "peer", "name", "cn-veth-b")
        for ns, addr, link in zip(NETNS, ADDRS, ("cn-veth-a", "cn-veth-b"), strict=True):
            _ip("link", "set", link, "netns", ns)
            _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", link)
            _ip("-n", ns, "link", "set", link, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield
    finally:
        for ns in NETNS:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def _kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and its descendants (torchrun starts its workers in sessions of their own)."""
    with contextlib.suppress(OSError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            _kill_tree(int(child))
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _host(index: int, *command: str) -> subprocess.Popen[str]:
    """torchrun on 'host' ``index`` of 2, rendezvous at host 0's address."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": f"cn-veth-{'ab'[index]}"}
    cmd = ["ip", "netns", "exec", NETNS[index], sys.executable, "-m", "torch.distributed.run", "--nnodes", "2",
           "--nproc-per-node", "1", "--rdzv-backend", "c10d", "--rdzv-endpoint", f"{ADDRS[0]}:29531",
           "--rdzv-id", "two-hosts", "--rdzv-conf", f"is_host={int(index == 0)}", "--local-addr", ADDRS[index],
           *command]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.slow
def test_two_hosts_train_in_sync_and_a_lost_host_ends_the_job(two_hosts: None, tmp_path: Path) -> None:
    """One torchrun per namespace (--nnodes 2, c10d rendezvous): both ranks train with identical parameters and
    only global rank 0 writes; then one host is killed and the other exits with an error, without hanging."""
    out = tmp_path / "sync"
    jobs = [_host(i, str(WORKER), str(out), "memory", "full") for i in (0, 1)]
    for job in jobs:
        _, stderr = job.communicate(timeout=300)
        assert job.returncode == 0, stderr[-3000:]
    ranks = [torch.load(out / f"rank{r}-full.pt", weights_only=True) for r in (0, 1)]
    for name, tensor in ranks[0].items():
        if "running_" not in name and not name.endswith("num_batches_tracked"):
            assert torch.equal(tensor, ranks[1][name]), f"{name} differs between the hosts"
    assert [r["epoch"] for r in csv.DictReader((out / "metrics.csv").open())] == ["1", "2"]  # one writer
    assert json.loads((out / "env.json").read_text())["world_size"] == 2

    lost = tmp_path / "lost"
    train = ["-m", "compactnets", "train", "resnet20_cifar", "--data", "digits", "--epochs", "200",
             "--batch-size", "32", "--out", str(lost), "--dist-timeout", "20", "--log-every", "1000"]  # fmt: skip
    jobs = [_host(i, *train) for i in (0, 1)]
    try:
        deadline = time.monotonic() + 180
        while not (lost / "env.json").is_file():
            assert all(j.poll() is None for j in jobs) and time.monotonic() < deadline, "the job did not start"
            time.sleep(0.5)
        time.sleep(2)
        _kill_tree(jobs[1].pid)  # host b is gone: its torchrun and its worker
        killed_at = time.monotonic()
        _, stderr = jobs[0].communicate(timeout=300)
        elapsed = time.monotonic() - killed_at
    finally:
        for job in jobs:
            _kill_tree(job.pid)
            job.wait()
    print(f"host a's job ended {elapsed:.1f} s after host b was killed")
    assert jobs[0].returncode != 0 and "compactnets: rank 0: " in stderr, stderr[-3000:]
    assert elapsed < 120
