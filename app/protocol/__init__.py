"""The wire contract of the live labs: `shared` holds what every lab's socket speaks, and each live
lab has its own module (`app.protocol.<slug>`) that `static/js/protocol/<slug>.js` mirrors."""
