// Fine-tuning: /finetune (jobs), /finetune/new (the form), /finetune/:id (a job, live).
import { matchPath } from "../router";
import { JobDetail } from "./finetune/JobDetail";
import { JobForm } from "./finetune/JobForm";
import { JobList } from "./finetune/JobList";

export default function FineTuning({ path }: { path: string }) {
  if (matchPath("/finetune/new", path)) return <JobForm />;
  const job = matchPath("/finetune/:id", path);
  if (job) return <JobDetail key={job.id} id={job.id} />;
  return <JobList />;
}
