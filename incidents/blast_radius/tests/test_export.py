"""The CSV export: cells a spreadsheet will not evaluate."""

from incidents.blast_radius.export import csv_safe


def test_csv_safe():
    assert csv_safe("=1+1") == "'=1+1"
    assert csv_safe("+x") == "'+x"
    assert csv_safe("-x") == "'-x"
    assert csv_safe("@x") == "'@x"
    assert csv_safe("u-1") == "u-1"
