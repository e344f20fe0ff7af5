"""`regbench archive` and `python -m regbench.report --from`: results that travel.

An archive is one zip file holding everything needed to read, check and re-render a set of
results on another machine::

    MANIFEST              sha256 and path of every other file (`sha256sum -c MANIFEST` works)
    archive.json          what made it: versions, the matrix, the plugins, the report command
    store/results.sqlite  the store: checkpointed (one file), integrity-checked
    report/               the report rendered from that store (Markdown, LaTeX, CSV, figures)
    matrix/               the matrix file (a built-in's TOML), with the plugin files it names
    plugins/              the source of every plugin whose cells are in the store, or that
                          the matrix loads (files/, modules/; stored/ for code only named
                          by stored cells), checked against the sha256 its cells recorded
    environment/          `regbench doctor` and the installed packages' versions

The modules: `manifest` (checksums), `plugin_files` (which plugin sources, where),
`build` (`regbench archive`), `render` (`--from`).
"""
