"""Red team against the grading path of 2026-11-27 (62aaf7f, b9dbedb): the box's `.git`
borrows the seed's objects, the tree is read from the agent's box while a pre-started
grading process waits for it on its stdin, the script's stderr shares its stdout.

Each attack is made as an agent would, through `env.step`; it must neither pay (a reward
without the fix) nor take a genuine fix's reward away as `infra` (an engine fault).
"""

from __future__ import annotations

import pytest

from bashenv.env import BashSWEEnv
from bashenv.sandbox.container import flush_removals

from .conftest import rid
from .test_adversarial import play

RUN = rid("adversarial-grading2")


@pytest.fixture
def env(textkit):
    environment = BashSWEEnv(textkit, run_id=RUN, command_timeout=20)
    yield environment
    environment.close()
    flush_removals()


# What the agent leaves in its tree that the host's tar reader (tree.py) or the grading
# box's extraction must take: odd metadata the engine's archive carries as PAX records.
ODD_TREES = {
    # before 1970 and far future: PAX mtime records (floats to Python's tarfile)
    "timestamps": ["touch -d @-86400 README.md && touch -h -d @-1 README.md",
                   "echo x > future.txt && touch -d @99999999999 future.txt",
                   "mkdir old && touch -d @-2208988800 old"],
    # user xattrs (tmpfs has them): a name with '=', values with newlines and NUL
    "xattrs": ["python3 - <<'EOF'\nimport os\n"
               "open('attrs.txt', 'w').write('x')\n"
               "for name, value in [(b'user.a=b', b'1\\n2'), (b'user.z', b'\\x00\\xff=\\n' * 500),"
               " (b'user.' + b'n' * 200, b'v')]:\n"
               "    try:\n        os.setxattr('attrs.txt', name, value)\n"
               "    except OSError as exc:\n        print('xattr', exc)\nEOF"],
    # a path longer than PATH_MAX (4096): the engine cannot stat it by its full name
    "path over PATH_MAX": ["top=$PWD; d=$(printf 'd%.0s' $(seq 200)); for i in $(seq 25); do "
                           "mkdir $d && cd $d || break; done; echo deep > deep.txt; cd \"$top\"; "
                           "find . -name deep.txt | wc -c"],
    # the agent's .git made useless or hostile: it is never read, only counted to the cap
    ".git a symlink to /": ["rm -rf .git && ln -s / .git"],
    "alternates loop": ["echo \"$PWD/.git/objects\" > .git/objects/info/alternates && "
                        "mkdir -p sub/.git/objects/info && echo /proc/self/root > "
                        "sub/.git/objects/info/alternates"],
}


# A command whose output shows the odd state is really there (the attack was made).
PROOF = {
    "timestamps": ("stat -c %Y README.md future.txt old", "-1\n99999999999\n-2208988800"),
    "xattrs": ("python3 -c \"import os; print(len(os.listxattr('attrs.txt')))\"", "3"),
    "path over PATH_MAX": ("find . -name deep.txt | wc -c", None),
    ".git a symlink to /": ("readlink .git", "/"),
    "alternates loop": ("cat .git/objects/info/alternates", "/.git/objects"),
}


@pytest.mark.parametrize("case", list(ODD_TREES))
def test_odd_trees_grade_the_fix_not_an_engine_fault(env, case):
    command, expected = PROOF[case]
    observations, reward, verdict = play(env, [*ODD_TREES[case], command], gold=True)
    shown = observations[-1]["output"].strip()
    assert (int(shown) > 4096) if expected is None else shown.endswith(expected), shown
    assert not verdict["infra"], verdict["error"]
    assert reward == 1.0, (verdict["outcome"], verdict["error"], verdict["log"][-1500:])
