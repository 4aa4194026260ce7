"""The seed's function and combiner in Python (examples/add_python.mf)."""


def add(x, y):
    return x + y


def add_combiner(**kwargs):
    # Called once, with each completed task's name as a keyword: add_combiner(**{"add-0": 40, ...})
    return sum(kwargs.values())
