"""Importing svc_plugin makes the upstream layer importable, from any working directory."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#----------------------------------------------------------------------------

def test_import_svc_plugin_puts_upstream_packages_on_path(tmp_path):
    code = ('import svc_plugin, dnnlib, legacy, torch_utils.persistence, training.networks_stylegan3, metrics.metric_main; '
            'print(os.path.dirname(dnnlib.__file__))')
    env = dict(os.environ, PYTHONPATH=ROOT)
    res = subprocess.run([sys.executable, '-c', 'import os; ' + code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == os.path.join(ROOT, 'third_party', 'stylegan3', 'dnnlib')

def test_upstream_layer_does_not_import_the_plugin():
    for folder, _dirs, files in os.walk(os.path.join(ROOT, 'third_party', 'stylegan3')):
        for name in files:
            if name.endswith('.py'):
                with open(os.path.join(folder, name), encoding='utf-8') as f:
                    assert 'svc_plugin' not in f.read(), f'{name} imports the plugin: arrows point one way'
