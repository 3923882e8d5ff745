/// The CRON.md a new installation starts with (the same bytes live in the repository's
/// `context/CRON.md`, and a test keeps the two identical): a header explaining the format, four
/// example jobs (the architecture review disabled) and closing notes. The header names the
/// fields only inside list items and an indented example, so it is not a job.
extension CronFile {
    public static let defaultTemplate = """
        <!-- CRON.md: tasks Claw carries out on a schedule. -->

        # Scheduled jobs

        Each section below, between lines of `---`, is one job: a `## ` heading with the job's name,
        then these fields, each at the very start of its own line:

        - `**Schedule**:` when to run: a cron expression of five fields (minute, hour, day of month,
          month, day of week, where 0 is Sunday), in the daemon's time zone. `0 9 * * 1-5` is 9:00
          on weekdays.
        - `**Command**:` the task, on one line.
        - `**Enabled**:` `true` or `false`; `true` when left out.

        The rest of the section is the job's context: details, format and limits the assistant gets
        with the command. A job with a mistake is skipped and reported, and the other jobs still run.
        Sections without these fields, like this one and the notes at the end, are ignored. A job
        looks like this:

            ## Weekly Plan

            **Schedule**: 0 8 * * 1
            **Command**: Suggest a plan for the week from what I said I want to get done.
            **Enabled**: true

            Five bullet points at most.

        ---

        ## Daily Summary

        **Schedule**: 0 9 * * *
        **Command**: Write a short morning briefing from yesterday's conversations.
        **Enabled**: true

        - What was discussed and what was decided.
        - Questions and tasks still open, and who is waiting on whom.
        - Ten lines at most. If there were no conversations, say so in one line.

        ---

        ## Security Check

        **Schedule**: 0 */6 * * *
        **Command**: Check today's conversations for secrets shared by mistake and say what to do about each.
        **Enabled**: true

        Look for API keys, passwords, tokens and private keys pasted into the chat. Never repeat a
        secret: say where it appeared and what kind it is, and advise rotating it. If there is
        nothing, answer only "Nothing found."

        ---

        ## Weekly Architecture Review

        **Schedule**: 0 10 * * 1
        **Command**: Review the technical designs and decisions discussed this week.
        **Enabled**: false

        Point out risks, decisions that contradict each other, and questions left open. Suggest at
        most three things worth revisiting, most important first. Enable this job if you use Claw
        for technical work.

        ---

        ## Daily Memory Update

        **Schedule**: 0 23 * * *
        **Command**: Suggest lines worth adding to MEMORY.md from today's conversations.
        **Enabled**: true

        Only lasting things: preferences, decisions, people, projects, dates. Skip what MEMORY
        already says. You cannot edit the file, so give each suggestion as a line the owner can
        copy.

        ---

        ## Best Practices

        - One clear task per command; put the details, the format and the limits in the context.
        - Say how long the answer should be and what to do when there is nothing to report.
        - The assistant can only write an answer: it cannot run commands, read files or browse. It
          sees its usual context (SOUL, AGENTS, USER, MEMORY, the daily logs) and the job.
        - Every run is a request to the model, which takes time and may cost money: avoid
          schedules like `* * * * *`.
        - To pause a job, set `**Enabled**: false` rather than deleting it, so its context is kept.

        """
}
