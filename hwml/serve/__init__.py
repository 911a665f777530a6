"""What the app's server keeps between requests (no Gradio here: `hwml.ui` wires these to the page).

- `workspace`: one folder per browser session, the shipped checkpoints, the disk budget
- `sources`: where a run's data comes from (built-in corpus, course folder or zip, your audio)
- `jobs`: training runs in background threads, a fair queue of slots, their live state
- `who_is_speaking`: a session's enrolled people and the "Who is speaking?" answers in words
"""
