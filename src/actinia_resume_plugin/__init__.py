"""actinia-resume-plugin: resumable process chains for actinia-core.

Loaded by actinia-core through ``[API] plugins = ["actinia_resume_plugin"]``;
actinia then calls :func:`actinia_resume_plugin.endpoints.create_endpoints`.
"""
