//! Colour decisions, made once from flags and the environment (never deep in rendering).

use crate::cli::ColorChoice;

/// Whether to colour output on a stream: `--color`, then `NO_COLOR`, then whether it is a TTY.
pub fn use_color(choice: ColorChoice, is_tty: bool, no_color_env: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => is_tty && !no_color_env,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn color_table() {
        assert!(use_color(ColorChoice::Always, false, true));
        assert!(!use_color(ColorChoice::Never, true, false));
        assert!(use_color(ColorChoice::Auto, true, false));
        assert!(!use_color(ColorChoice::Auto, true, true));
        assert!(!use_color(ColorChoice::Auto, false, false));
    }
}
