"""OpenML data for the `openml` task: the cache, downloads through the `openml` client, and
the suites written into regbench.

- `cache`: where datasets are kept (`--data-dir`/openml, `$REGBENCH_DATA_DIR`/openml, else
  the `openml` package's own cache directory, its configuration file honoured: server,
  cache directory), the offline switch, and regbench's record of each task and dataset
  it fetched (name, version, md5 checksum, licence, the cached files);
- `client`: calls into the `openml` package with a deadline, and its errors as one line;
- `fetch`: download what a list of task specs needs, verify checksums, say what happened;
- `suites`: OpenML-CC18 as a fixed list of task ids with their shapes, and `cc18-small`.
"""
