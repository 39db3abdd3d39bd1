"""The fitting engine: options and chunk planning, the verdict, FitResult, resume, model cubes."""
