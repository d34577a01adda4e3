"""`tongban deploy render|compose` as city IT runs them: a process, a catalogue file, a folder."""
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "shared" / "data" / "catalog" / "sample-city.yaml"
TONGBAN = [sys.executable, "-m", "tongban.cli"]


def run(*args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TONGBAN_")}
    return subprocess.run([*TONGBAN, "deploy", *args], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)


def test_render_writes_the_base_and_the_citys_overlay_and_compose_the_host_files(tmp_path):
    done = run("render", "--catalog", str(CATALOG), "--out", str(tmp_path / "k8s"), "--name", "kunshan",
               "--portal-host", "zwfw.kunshan.example.cn")
    assert done.returncode == 0, done.stderr
    overlay = tmp_path / "k8s" / "overlays" / "kunshan"
    assert (tmp_path / "k8s" / "base" / "deployment.yaml").exists()
    (ingress,) = yaml.safe_load_all((overlay / "ingress.yaml").read_text(encoding="utf-8"))
    assert ingress["spec"]["rules"][0]["host"] == "zwfw.kunshan.example.cn"
    assert (overlay / "catalog" / "kunshan.yaml").read_bytes() == CATALOG.read_bytes()
    done = run("compose", "--catalog", str(CATALOG), "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load((tmp_path / "docker-compose.yml").read_text(encoding="utf-8"))["services"]
    assert "approval-linye" in services and "intake-320583112" in services
    assert (tmp_path / "deploy" / "postgres" / "init.sql").read_text().count("CREATE DATABASE") == 30


def test_a_missing_catalogue_is_refused_with_the_reason(tmp_path):
    done = run("render", "--catalog", str(tmp_path / "nowhere.yaml"), "--out", str(tmp_path / "k8s"))
    assert done.returncode == 2
    assert "nowhere.yaml" in done.stderr and "Traceback" not in done.stderr
