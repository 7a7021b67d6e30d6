"""The ``urlvr`` command's own behaviour, in-process: the commands listed, one line for a bad command."""

from urlvr_jax import cli


def test_help_lists_every_command_with_one_line(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    listed = [line.split()[0] for line in out.split("commands:\n", 1)[1].splitlines()]
    assert listed == list(cli.COMMANDS) == ["train", "evaluate", "plan", "mcs", "study", "warm-start"]


def test_unknown_command_is_one_line(capsys):
    assert cli.main(["trian"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: unknown command 'trian'; the commands are train, evaluate, plan, mcs, study, "
                   "warm-start (urlvr --help)"]


def test_a_module_missing_from_the_installation_is_one_line(capsys, monkeypatch):
    monkeypatch.setitem(cli.COMMANDS, "gone", ("urlvr_jax.no_such_module", "a command whose module is gone"))
    assert cli.main(["gone", "--x"]) == 2
    assert capsys.readouterr().err.strip() == ("error: urlvr gone: module urlvr_jax.no_such_module is not in this "
                                               "installation of urlvr_jax")
