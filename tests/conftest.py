"""Test-suite configuration: markers."""


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "packaging: builds the wheel once per session and runs installed copies in "
                   "subprocesses (about 15 s in all); deselect with -m 'not packaging'")
