"""What every layer uses: params.yaml as validated dataclasses, the user's repository,
outputs that appear whole or not at all, process pools and progress lines. Imports
nothing else of the package."""
