package policy

// targets[].objectives.*: the recovery objectives a target is held to.

// Objectives is targets[].objectives: the recovery objectives the target is held to.
type Objectives struct {
	// RTO: the longest a restore may take, from the drill's start to verified and usable.
	RTO Duration `yaml:"rto" json:"rto"`
	// RPO: the most data, in time, the target may lose.
	RPO Duration `yaml:"rpo" json:"rpo"`
	// DrillEvery: how recent the last passing drill must be.
	DrillEvery Duration `yaml:"drillEvery" json:"drillEvery"`
}

// validateObjectives checks a target's objectives.
func validateObjectives(p string, o Objectives, add addFunc) {
	for key, d := range map[string]Duration{"rto": o.RTO, "rpo": o.RPO, "drillEvery": o.DrillEvery} {
		if d.IsSet() && d.Duration <= 0 {
			add(p+"."+key, "must be greater than zero (leave it out for the default)")
		}
	}
}
