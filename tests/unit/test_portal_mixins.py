"""The portal is one service made of a mixin per workbench: no two may define the same name (the first in the
method resolution order would silently answer for both)."""
from services.portal.service import WORKBENCHES


def test_no_two_workbench_mixins_define_the_same_name():
    seen: dict[str, str] = {}
    clashes = []
    for cls in WORKBENCHES:
        for name in vars(cls):
            if name.startswith("__"):
                continue
            if name in seen:
                clashes.append(f"{name}: {seen[name]} and {cls.__name__}")
            seen[name] = cls.__name__
    assert not clashes, clashes
