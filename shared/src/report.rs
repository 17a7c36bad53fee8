//! A tenant's day in numbers: what the engine counts on each transition of a conversation
//! ([`Tally`]), kept as counters on one item per tenant and local day
//! (`REPORT#<pn>`/`DAY#<yyyy-mm-dd>`), and the day as a report reads it ([`DayReport`]).
//!
//! Counters are only ever added to (DynamoDB `ADD`, in the transaction that commits the
//! event, so each counts exactly once); the maxima are raised by a separate conditional
//! write, which is idempotent. Durations are whole seconds.

use chrono::NaiveDate;
use serde::Serialize;

/// A sum, a count and the largest of some durations (seconds), so averages can be computed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Durations {
    pub count: u64,
    pub sum_seconds: u64,
    pub max_seconds: u64,
}

impl Durations {
    pub fn record(&mut self, seconds: i64) {
        self.record_without_max(seconds);
        self.max_seconds = self.max_seconds.max(seconds.max(0) as u64);
    }

    /// For a duration whose maximum is not kept (each maximum costs a write).
    pub fn record_without_max(&mut self, seconds: i64) {
        self.count += 1;
        self.sum_seconds += seconds.max(0) as u64;
    }

    pub fn average_seconds(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_seconds as f64 / self.count as f64)
    }
}

/// What one event adds to its tenant's day. All zero for most events (a menu choice, a flow
/// answer): those write no counter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Conversations a customer's message started.
    pub started: u64,
    /// Conversations that reached the NPS question or closed without a person.
    pub bot_only: u64,
    /// Conversations handed to a person (the queue, or an agent writing in).
    pub handed_over: u64,
    /// Conversations an agent resolved.
    pub resolved: u64,
    /// The AI attendant's answers (replies, handoffs and failures).
    pub ai_turns: u64,
    pub ai_requests: u64,
    pub ai_input_tokens: u64,
    pub ai_cache_write_tokens: u64,
    pub ai_cache_read_tokens: u64,
    pub ai_output_tokens: u64,
    /// At the list price of the tenant's model when the turn happened.
    pub ai_cost_micro_usd: u64,
    /// Turns of a model without a known price (their cost is not in `ai_cost_micro_usd`).
    pub ai_unpriced_turns: u64,
    /// A new conversation's first message to the bot's first reply (no maximum kept).
    pub bot_first_response: Durations,
    /// A handed-over conversation's first message to an agent's first reply.
    pub agent_first_response: Durations,
    /// Entering the human queue to an agent taking the conversation.
    pub queue_wait: Durations,
    pub sla_warnings: u64,
    pub sla_breaches: u64,
    pub nps_answers: u64,
    pub nps_sum: u64,
    /// How many answered 0, 1, ... 10.
    pub nps_scores: [u64; 11],
}

const NPS_SCORE_NAMES: [&str; 11] = [
    "nps_0", "nps_1", "nps_2", "nps_3", "nps_4", "nps_5", "nps_6", "nps_7", "nps_8", "nps_9",
    "nps_10",
];

impl Tally {
    pub fn is_empty(&self) -> bool {
        *self == Tally::default()
    }

    pub fn add(&mut self, other: &Tally) {
        for (mine, theirs) in self.counters_mut().into_iter().zip(other.counters()) {
            *mine.1 += theirs.1;
        }
        // The counters hold the durations' counts and sums; what is left is the maxima.
        for (mine, theirs) in [
            (&mut self.bot_first_response, &other.bot_first_response),
            (&mut self.agent_first_response, &other.agent_first_response),
            (&mut self.queue_wait, &other.queue_wait),
        ] {
            mine.max_seconds = mine.max_seconds.max(theirs.max_seconds);
        }
    }

    pub fn nps(&mut self, score: u8) {
        let score = usize::from(score.min(10));
        self.nps_answers += 1;
        self.nps_sum += score as u64;
        self.nps_scores[score] += 1;
    }

    /// Every counter the item holds under its attribute name (the durations' counts and
    /// sums included; the maxima are [`Tally::maxima`]).
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        let mut counters = vec![
            ("started", self.started),
            ("bot_only", self.bot_only),
            ("handed_over", self.handed_over),
            ("resolved", self.resolved),
            ("ai_turns", self.ai_turns),
            ("ai_requests", self.ai_requests),
            ("ai_input_tokens", self.ai_input_tokens),
            ("ai_cache_write_tokens", self.ai_cache_write_tokens),
            ("ai_cache_read_tokens", self.ai_cache_read_tokens),
            ("ai_output_tokens", self.ai_output_tokens),
            ("ai_cost_micro_usd", self.ai_cost_micro_usd),
            ("ai_unpriced_turns", self.ai_unpriced_turns),
            ("bot_reply_n", self.bot_first_response.count),
            ("bot_reply_s", self.bot_first_response.sum_seconds),
            ("agent_reply_n", self.agent_first_response.count),
            ("agent_reply_s", self.agent_first_response.sum_seconds),
            ("wait_n", self.queue_wait.count),
            ("wait_s", self.queue_wait.sum_seconds),
            ("sla_warnings", self.sla_warnings),
            ("sla_breaches", self.sla_breaches),
            ("nps_answers", self.nps_answers),
            ("nps_sum", self.nps_sum),
        ];
        counters.extend(NPS_SCORE_NAMES.iter().copied().zip(self.nps_scores));
        counters
    }

    fn counters_mut(&mut self) -> Vec<(&'static str, &mut u64)> {
        let mut counters = vec![
            ("started", &mut self.started),
            ("bot_only", &mut self.bot_only),
            ("handed_over", &mut self.handed_over),
            ("resolved", &mut self.resolved),
            ("ai_turns", &mut self.ai_turns),
            ("ai_requests", &mut self.ai_requests),
            ("ai_input_tokens", &mut self.ai_input_tokens),
            ("ai_cache_write_tokens", &mut self.ai_cache_write_tokens),
            ("ai_cache_read_tokens", &mut self.ai_cache_read_tokens),
            ("ai_output_tokens", &mut self.ai_output_tokens),
            ("ai_cost_micro_usd", &mut self.ai_cost_micro_usd),
            ("ai_unpriced_turns", &mut self.ai_unpriced_turns),
            ("bot_reply_n", &mut self.bot_first_response.count),
            ("bot_reply_s", &mut self.bot_first_response.sum_seconds),
            ("agent_reply_n", &mut self.agent_first_response.count),
            ("agent_reply_s", &mut self.agent_first_response.sum_seconds),
            ("wait_n", &mut self.queue_wait.count),
            ("wait_s", &mut self.queue_wait.sum_seconds),
            ("sla_warnings", &mut self.sla_warnings),
            ("sla_breaches", &mut self.sla_breaches),
            ("nps_answers", &mut self.nps_answers),
            ("nps_sum", &mut self.nps_sum),
        ];
        counters.extend(
            NPS_SCORE_NAMES
                .iter()
                .copied()
                .zip(self.nps_scores.iter_mut()),
        );
        counters
    }

    /// The maxima the item holds, raised (never lowered) by a conditional write.
    pub fn maxima(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("agent_reply_max", self.agent_first_response.max_seconds),
            ("wait_max", self.queue_wait.max_seconds),
        ]
    }

    /// A day's item read back: every counter and maximum by its attribute name (absent ones
    /// are zero; unknown names are ignored).
    pub fn from_attributes<'a>(attributes: impl IntoIterator<Item = (&'a str, u64)>) -> Tally {
        let mut tally = Tally::default();
        for (name, value) in attributes {
            match name {
                "agent_reply_max" => tally.agent_first_response.max_seconds = value,
                "wait_max" => tally.queue_wait.max_seconds = value,
                name => {
                    if let Some((_, counter)) = tally
                        .counters_mut()
                        .into_iter()
                        .find(|(counter, _)| *counter == name)
                    {
                        *counter = value;
                    }
                }
            }
        }
        tally
    }
}

/// The longest range one report reads (a quarter): its days are one query of one partition.
pub const MAX_REPORT_DAYS: i64 = 92;

/// One day of a tenant, with the averages derived from its counters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayReport {
    /// The tenant's local date.
    pub date: NaiveDate,
    pub conversations: Conversations,
    pub ai: AiDay,
    pub bot_first_response: Timing,
    pub agent_first_response: Timing,
    pub queue_wait: Timing,
    pub sla: Sla,
    pub nps: Nps,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conversations {
    pub started: u64,
    pub bot_only: u64,
    pub handed_over: u64,
    pub resolved: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AiDay {
    pub turns: u64,
    pub requests: u64,
    pub input_tokens: u64,
    pub cache_write_tokens: u64,
    pub cache_read_tokens: u64,
    pub output_tokens: u64,
    /// At the list price of the tenant's model when each turn happened.
    pub cost_usd: f64,
    /// Turns whose model had no known price: their cost is missing from `cost_usd`.
    pub unpriced_turns: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timing {
    pub count: u64,
    pub sum_seconds: u64,
    /// `None` while `count` is 0.
    pub average_seconds: Option<f64>,
    /// `None` where no maximum is kept (the bot's first reply) or nothing was measured.
    pub max_seconds: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sla {
    pub warnings: u64,
    pub breaches: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Nps {
    pub answers: u64,
    pub sum: u64,
    /// `None` while nobody answered.
    pub average: Option<f64>,
    /// Promoters (9-10) minus detractors (0-6), in percent of the answers.
    pub score: Option<f64>,
    /// Answers per score, 0 to 10.
    pub distribution: [u64; 11],
}

impl DayReport {
    pub fn new(date: NaiveDate, tally: &Tally) -> Self {
        let timing = |durations: &Durations, keeps_max: bool| Timing {
            count: durations.count,
            sum_seconds: durations.sum_seconds,
            average_seconds: durations.average_seconds(),
            max_seconds: (keeps_max && durations.count > 0).then_some(durations.max_seconds),
        };
        let answers = tally.nps_answers;
        let promoters: u64 = tally.nps_scores[9..].iter().sum();
        let detractors: u64 = tally.nps_scores[..7].iter().sum();
        DayReport {
            date,
            conversations: Conversations {
                started: tally.started,
                bot_only: tally.bot_only,
                handed_over: tally.handed_over,
                resolved: tally.resolved,
            },
            ai: AiDay {
                turns: tally.ai_turns,
                requests: tally.ai_requests,
                input_tokens: tally.ai_input_tokens,
                cache_write_tokens: tally.ai_cache_write_tokens,
                cache_read_tokens: tally.ai_cache_read_tokens,
                output_tokens: tally.ai_output_tokens,
                cost_usd: tally.ai_cost_micro_usd as f64 / 1e6,
                unpriced_turns: tally.ai_unpriced_turns,
            },
            bot_first_response: timing(&tally.bot_first_response, false),
            agent_first_response: timing(&tally.agent_first_response, true),
            queue_wait: timing(&tally.queue_wait, true),
            sla: Sla {
                warnings: tally.sla_warnings,
                breaches: tally.sla_breaches,
            },
            nps: Nps {
                answers,
                sum: tally.nps_sum,
                average: (answers > 0).then(|| tally.nps_sum as f64 / answers as f64),
                score: (answers > 0)
                    .then(|| (promoters as f64 - detractors as f64) * 100.0 / answers as f64),
                distribution: tally.nps_scores,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_read_back_by_name() {
        let mut tally = Tally {
            started: 3,
            ai_cost_micro_usd: 1234,
            ..Tally::default()
        };
        tally.queue_wait.record(90);
        tally.queue_wait.record(30);
        tally.nps(9);
        tally.nps(10);
        tally.nps(3);
        let stored: Vec<(&str, u64)> = tally
            .counters()
            .into_iter()
            .chain(tally.maxima())
            .filter(|(_, value)| *value > 0)
            .collect();
        assert_eq!(Tally::from_attributes(stored), tally);
    }

    #[test]
    fn tallies_add_up_and_keep_the_larger_maximum() {
        let mut day = Tally::default();
        let mut one = Tally {
            handed_over: 1,
            ..Tally::default()
        };
        one.queue_wait.record(120);
        let mut two = Tally {
            handed_over: 1,
            ..Tally::default()
        };
        two.queue_wait.record(60);
        two.nps(7);
        day.add(&one);
        day.add(&two);
        assert_eq!(day.handed_over, 2);
        assert_eq!(
            day.queue_wait,
            Durations {
                count: 2,
                sum_seconds: 180,
                max_seconds: 120
            }
        );
        assert_eq!((day.nps_answers, day.nps_sum, day.nps_scores[7]), (1, 7, 1));
    }

    #[test]
    fn a_day_derives_its_averages_and_nps() {
        let mut tally = Tally::default();
        tally.queue_wait.record(100);
        tally.queue_wait.record(200);
        tally.bot_first_response.record_without_max(1);
        for score in [10, 9, 8, 6] {
            tally.nps(score);
        }
        let date = NaiveDate::from_ymd_opt(2026, 12, 3).unwrap();
        let day = DayReport::new(date, &tally);
        assert_eq!(day.queue_wait.average_seconds, Some(150.0));
        assert_eq!(day.queue_wait.max_seconds, Some(200));
        assert_eq!(day.bot_first_response.max_seconds, None);
        assert_eq!(day.agent_first_response.average_seconds, None);
        assert_eq!(day.nps.average, Some(8.25));
        // 2 promoters, 1 detractor of 4.
        assert_eq!(day.nps.score, Some(25.0));
        assert_eq!(DayReport::new(date, &Tally::default()).nps.average, None);
    }
}
