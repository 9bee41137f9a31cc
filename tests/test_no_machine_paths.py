"""No tracked file records where one machine kept things (issue 41): reports and archives are read on
other machines, and an absolute home, temp or work path there is noise at best and a leak at worst."""
import os
import re
import subprocess

from clitools import REPO

#: An absolute path under home, root, tmp or work (not inside a URL or a relative path).
MACHINE_PATH = re.compile(r"(?<![\w.:/-])/(?:" + "|".join(["home", "root", "tmp", "work"]) + r")/\S")


def test_no_tracked_text_file_holds_an_absolute_machine_path():
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    found = []
    for name in tracked.decode().split("\0"):
        path = os.path.join(REPO, name)
        if not name or not os.path.isfile(path) or os.path.getsize(path) > 5_000_000:
            continue
        with open(path, "rb") as f:
            data = f.read()
        if b"\0" in data:  # binary (a model file): not text a person or a report reads
            continue
        for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
            if MACHINE_PATH.search(line):
                found.append(f"{name}:{number}: {line.strip()[:100]}")
    assert found == []


def test_the_pattern_finds_what_it_looks_for():
    assert MACHINE_PATH.search('"root_dir": "/wor' + 'k/main/docs/runs/x"')
    assert MACHINE_PATH.search("--output_dir=/tm" + "p/c27exp/hopper")
    assert not MACHINE_PATH.search("docs/runs/tmp/x https://example.org/home/page ./work/x")
