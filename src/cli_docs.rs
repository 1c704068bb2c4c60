//! Shell completions and the man page, generated from the command-line definition so they
//! never drift from it (`waggle completions bash|zsh|fish`, `waggle man`).

use std::io::Write;

use clap::CommandFactory;
pub use clap_complete::Shell;

use crate::cli::Cli;

/// Writes the completion script for `shell`.
pub fn write_completions(shell: Shell, out: &mut dyn Write) {
    clap_complete::generate(shell, &mut Cli::command(), "waggle", out);
}

/// Writes the man page (roff, section 1) for waggle and its subcommands.
pub fn write_man_page(out: &mut dyn Write) -> std::io::Result<()> {
    let command = Cli::command();
    clap_mangen::Man::new(command.clone()).render(out)?;
    // Each subcommand's description and own options, in a section under its name.
    for subcommand in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        writeln!(out, ".SH \"WAGGLE {}\"", subcommand.get_name().to_uppercase())?;
        clap_mangen::Man::new(subcommand.clone()).render_description_section(out)?;
        clap_mangen::Man::new(subcommand.clone()).render_options_section(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completions(shell: Shell) -> String {
        let mut out = Vec::new();
        write_completions(shell, &mut out);
        String::from_utf8(out).expect("a completion script is text")
    }

    fn man_page() -> String {
        let mut out = Vec::new();
        write_man_page(&mut out).expect("rendered");
        String::from_utf8(out).expect("a man page is text")
    }

    #[test]
    fn bash_completions_offer_the_subcommands_and_flags() {
        let script = completions(Shell::Bash);
        for word in ["health", "config", "completions", "--data-dir", "--bind"] {
            assert!(script.contains(word), "{word} missing");
        }
    }

    #[test]
    fn zsh_and_fish_completions_name_the_program() {
        assert!(completions(Shell::Zsh).starts_with("#compdef waggle"));
        assert!(completions(Shell::Fish).contains("complete -c waggle"));
    }

    #[test]
    fn the_man_page_has_a_title_and_every_flag() {
        let page = man_page();
        assert!(page.starts_with(".ie") || page.contains(".TH waggle 1"), "{}", &page[..200.min(page.len())]);
        for flag in ["data\\-dir", "bind\\-tcp", "log\\-level"] {
            assert!(page.contains(flag), "{flag} missing");
        }
    }

    #[test]
    fn the_man_page_describes_each_subcommand() {
        let page = man_page();
        for subcommand in ["HEALTH", "CONFIG", "MAN"] {
            assert!(page.contains(&format!(".SH \"WAGGLE {subcommand}\"")), "{subcommand} missing");
        }
    }
}
