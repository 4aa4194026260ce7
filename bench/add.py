"""The Python function of bench/py_*.mf: the seed's add."""


def add(x, y):
    return x + y
