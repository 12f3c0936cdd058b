#!/usr/bin/env python3
"""Mutation testing for kgstore: does the test suite notice small bugs?

    scripts/mutate.py [--only REGEX] [--list] [--check] [--keep] [--work DIR]
                      [--jobs N] [--timeout SECONDS] [--no-baseline]

Each mutant in tests/mutation/mutants.txt is one small, plausible bug: a
file, an exact snippet of it (which must occur exactly once) and its
replacement, and a ctest -R pattern naming the tests that should notice it.
The script copies the working tree (tracked and untracked, not ignored
files) to a scratch directory, builds it once, runs the union of the
patterns on the unmutated copy (the baseline must pass), then for each
mutant: writes the bug into the copy, rebuilds, runs its tests, and puts
the file back. The working tree itself is never written to, so an
interrupted run leaves nothing mutated; the scratch directory is deleted at
the end (--keep keeps it) and any PostgreSQL test server left running in it
is stopped.

A mutant is killed when a test fails (or times out), survives when all its
tests pass; one that does not compile is reported apart and not scored.
Mutants marked `equivalent = reason` change no behaviour a caller can see;
they are run and listed but not scored. The score is killed / (killed +
survived). Exit status: 0 when no mutant survived, 1 when some did, 2 when
the run could not be made (a snippet that no longer matches, a baseline
that fails, a build that fails).

--check only verifies that every snippet still occurs exactly once (a few
seconds; run it after changing the code the mutants are written against).
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MUTANTS = os.path.join(ROOT, "tests", "mutation", "mutants.txt")


class Mutant:
    def __init__(self, name, line):
        self.name = name
        self.line = line
        self.file = None
        self.tests = None
        self.why = ""
        self.equivalent = None
        self.original = None
        self.replacement = None


def parse(path):
    """Reads the mutant list. Blocks look like:

        [name]
        file = src/...
        tests = ^conformance_memory$
        why = what the bug is
        <<<
        original lines
        ===
        replacement lines
        >>>
    """
    mutants, cur = [], None
    lines = open(path, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        ln = lines[i]
        if not ln.strip() or ln.startswith("#"):
            i += 1
            continue
        m = re.match(r"^\[([A-Za-z0-9_.-]+)\]\s*$", ln)
        if m:
            cur = Mutant(m.group(1), i + 1)
            mutants.append(cur)
            i += 1
            continue
        if cur is None:
            sys.exit(f"{path}:{i + 1}: text before the first [mutant]")
        if ln == "<<<":
            j = i + 1
            orig = []
            while j < len(lines) and lines[j] != "===":
                orig.append(lines[j])
                j += 1
            k = j + 1
            repl = []
            while k < len(lines) and lines[k] != ">>>":
                repl.append(lines[k])
                k += 1
            if j >= len(lines) or k >= len(lines):
                sys.exit(f"{path}:{i + 1}: [{cur.name}]: <<< without === and >>>")
            cur.original = "\n".join(orig)
            cur.replacement = "\n".join(repl)
            i = k + 1
            continue
        m = re.match(r"^(file|tests|why|equivalent)\s*=\s*(.*)$", ln)
        if not m:
            sys.exit(f"{path}:{i + 1}: [{cur.name}]: cannot read: {ln!r}")
        setattr(cur, m.group(1), m.group(2).strip())
        i += 1
    names = set()
    for mu in mutants:
        if mu.name in names:
            sys.exit(f"{path}:{mu.line}: mutant [{mu.name}] is defined twice")
        names.add(mu.name)
        for what in ("file", "tests", "original", "replacement"):
            if getattr(mu, what) is None:
                sys.exit(f"{path}:{mu.line}: [{mu.name}] has no {what}")
        if mu.original == mu.replacement:
            sys.exit(f"{path}:{mu.line}: [{mu.name}] changes nothing")
    return mutants


def check_snippets(mutants, root):
    """Every original snippet occurs exactly once in its file."""
    bad = []
    for mu in mutants:
        path = os.path.join(root, mu.file)
        try:
            text = open(path, encoding="utf-8").read()
        except OSError as e:
            bad.append(f"[{mu.name}] {mu.file}: {e.strerror}")
            continue
        n = text.count(mu.original)
        if n != 1:
            bad.append(f"[{mu.name}] (mutants.txt line {mu.line}): the snippet occurs {n} times "
                       f"in {mu.file}; rewrite it against the current code")
    return bad


def sh(cmd, cwd=None, log=None, timeout=None):
    """Runs cmd in its own process group; returns (exit code, output)."""
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, errors="replace", start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    except BaseException:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        raise
    if log:
        with open(log, "a") as f:
            f.write(f"$ {' '.join(cmd)}\n{out}\n")
    return p.returncode, out


def copy_tree(dst):
    """The working tree as it is (tracked and untracked files, not ignored ones)."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, check=True, stdout=subprocess.PIPE).stdout.split(b"\0")
    for f in files:
        if not f:
            continue
        rel = f.decode()
        src = os.path.join(ROOT, rel)
        if not os.path.isfile(src):
            continue  # deleted in the working tree
        out = os.path.join(dst, rel)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        shutil.copy2(src, out)


def stop_pg_servers(build):
    """Stops any test PostgreSQL server a killed ctest left in the build tree."""
    script = os.path.join(ROOT, "scripts", "pg-test-server.sh")
    for dirpath, dirnames, filenames in os.walk(build):
        if "postmaster.pid" in filenames:
            subprocess.run(["sh", script, "stop", dirpath], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            dirnames[:] = []


def targets_for(build, pattern):
    """The build targets the tests of a pattern run (test programs, the
    kgstore command), so that a mutant relinks only those; None: all."""
    import json
    rc, out = sh(["ctest", "-N", "-R", pattern, "--show-only=json-v1"], cwd=build)
    if rc != 0:
        return None
    try:
        tests = json.loads(out[out.index("{"):])["tests"]
    except (ValueError, KeyError):
        return None
    targets = set()
    for t in tests:
        for arg in t.get("command", []):
            if arg.startswith(build) and os.path.isfile(arg) and os.access(arg, os.X_OK):
                name = os.path.basename(arg)
                targets.add("kgstore_cli" if name == "kgstore" else name)
            elif "python" in t.get("name", ""):
                return None  # the module is not a program: build everything
    return sorted(targets) or None


def failed_tests(out):
    names = re.findall(r"^\s*\d+ - (\S+) \(", out, re.M)
    return [n for n in names if not n.startswith("postgres_server")] or names


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="run the mutants whose name matches this regex")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--check", action="store_true", help="only check that every snippet still matches")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    ap.add_argument("--work", help="scratch directory (default: a new one under $TMPDIR)")
    ap.add_argument("--jobs", type=int, default=2, help="build and ctest parallelism (default 2)")
    ap.add_argument("--timeout", type=int, default=600, help="per-test timeout in seconds (default 600)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the unmutated run")
    args = ap.parse_args()

    mutants = parse(MUTANTS)
    if args.only:
        mutants = [m for m in mutants if re.search(args.only, m.name)]
    if args.list:
        for m in mutants:
            print(f"{m.name:44} {m.file:34} {m.tests}")
        print(f"{len(mutants)} mutants")
        return 0
    bad = check_snippets(mutants, ROOT)
    if bad:
        print("mutate: snippets that no longer match the code:", file=sys.stderr)
        for b in bad:
            print("  " + b, file=sys.stderr)
        return 2
    if args.check:
        print(f"mutate: all {len(mutants)} snippets match")
        return 0
    if not mutants:
        print("mutate: no mutant selected", file=sys.stderr)
        return 2

    work = args.work or tempfile.mkdtemp(prefix="kg-mutate-")
    os.makedirs(work, exist_ok=True)
    src, build, log = os.path.join(work, "src"), os.path.join(work, "build"), os.path.join(work, "log.txt")
    jobs = str(args.jobs)
    results = []
    t_start = time.time()
    try:
        print(f"mutate: copying the working tree to {src}", flush=True)
        if os.path.exists(src):
            shutil.rmtree(src)
        copy_tree(src)
        print(f"mutate: building in {build} (log: {log})", flush=True)
        # -O2 without -g: each mutant relinks every test program, and
        # smaller objects link faster; warnings are not errors, so a mutant
        # that only warns is still tested.
        rc, out = sh(["cmake", "-S", src, "-B", build, "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                      "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O2", "-DKG_WERROR=OFF"], log=log)
        if rc == 0:
            rc, out = sh(["cmake", "--build", build, "-j", jobs], log=log)
        if rc != 0:
            print(out[-3000:], file=sys.stderr)
            print("mutate: the unmutated tree does not build", file=sys.stderr)
            return 2
        for m in mutants:
            rc, out = sh(["ctest", "-N", "-R", m.tests], cwd=build)
            if not re.search(r"Total Tests: [1-9]", out):
                print(f"mutate: [{m.name}]: the pattern {m.tests!r} selects no test", file=sys.stderr)
                return 2
        if not args.no_baseline:
            union = "|".join(f"(?:{m.tests})" for m in mutants)
            print("mutate: baseline (the unmutated tree must pass the tests the mutants use)", flush=True)
            rc, out = sh(["ctest", "-R", union, "-j", jobs, "--timeout", str(args.timeout)], cwd=build,
                         log=log)
            if rc != 0:
                print(out[-3000:], file=sys.stderr)
                print("mutate: the baseline fails: " + ", ".join(failed_tests(out)), file=sys.stderr)
                return 2
        for i, m in enumerate(mutants, 1):
            path = os.path.join(src, m.file)
            text = open(path, encoding="utf-8").read()
            t0 = time.time()
            print(f"[{i:2}/{len(mutants)}] {m.name:44} ", end="", flush=True)
            try:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text.replace(m.original, m.replacement, 1))
                targets = targets_for(build, m.tests)
                cmd = ["cmake", "--build", build, "-j", jobs]
                if targets:
                    cmd += ["--target"] + targets
                rc, out = sh(cmd, log=log)
                if rc != 0:
                    status, detail = "no-compile", ""
                else:
                    rc, out = sh(["ctest", "-R", m.tests, "-j", jobs, "--timeout", str(args.timeout)],
                                 cwd=build, log=log)
                    if rc != 0:
                        status, detail = "killed", ", ".join(failed_tests(out))
                    else:
                        status, detail = "SURVIVED", ""
            finally:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text)
            if m.equivalent and status == "SURVIVED":
                status = "equivalent"
            secs = time.time() - t0
            print(f"{status:10} {secs:5.0f} s  {detail}", flush=True)
            results.append((m, status, detail))
    except KeyboardInterrupt:
        print("\nmutate: interrupted (the working tree was never touched)", file=sys.stderr)
        return 130
    finally:
        if os.path.isdir(build):
            stop_pg_servers(build)
        if args.keep:
            print(f"mutate: scratch directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    killed = sum(1 for _, s, _ in results if s == "killed")
    survived = [(m, s) for m, s, _ in results if s == "SURVIVED"]
    equivalent = [m for m, s, _ in results if s == "equivalent"]
    stillborn = [m for m, s, _ in results if s == "no-compile"]
    scored = killed + len(survived)
    print()
    print(f"mutate: {len(results)} mutants in {(time.time() - t_start) / 60:.0f} min: "
          f"{killed} killed, {len(survived)} survived, {len(equivalent)} equivalent, "
          f"{len(stillborn)} did not compile")
    if scored:
        print(f"mutate: score {killed}/{scored} = {100.0 * killed / scored:.1f}%")
    for m, _ in survived:
        print(f"  survived: [{m.name}] {m.file}: {m.why}")
    for m in equivalent:
        print(f"  equivalent: [{m.name}] {m.equivalent}")
    for m in stillborn:
        print(f"  did not compile: [{m.name}] {m.file}")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
