"""The notifications app stays readable: short functions, short modules."""

from tests.code_shape import long_functions, long_modules


def test_no_function_is_over_60_lines_and_no_module_over_400():
    assert long_functions("notifications") == []
    assert long_modules("notifications") == []
