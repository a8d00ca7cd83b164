from conftest import make_data_dir, train_tiny


def test_fixture_trains(tmp_path):
    d = make_data_dir(tmp_path / "d", n_train=100, n_test=20, real=False)
    ck = train_tiny(tmp_path / "r", d, "wgan", iters=2)
    assert (ck / "model.safetensors").exists()


def test_acgan_fixture(acgan_ckpt, wgan_gp_ckpt):
    assert (acgan_ckpt / "config.json").exists() and (wgan_gp_ckpt / "config.json").exists()
