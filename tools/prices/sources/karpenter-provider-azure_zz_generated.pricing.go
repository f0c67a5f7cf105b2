// Excerpt of Azure/karpenter-provider-azure pkg/providers/pricing/zz_generated.pricing.go
// (commit 0499866a0874e27363395146ad4ecf5dac208e6d), the rows for the VM sizes slm-deploy prices, copied
// verbatim from the file read on 2026-12-07. The file is generated; its header reads:
// generated at 2023-12-18T14:34:50Z
// northcentralus (GPU rows: cross-check against skypilot-catalog v6, which has them too)
	initialOnDemandPrices["northcentralus"] = map[string]float64{
		"Standard_NC16as_T4_v3":    1.204000,
		"Standard_NC24ads_A100_v4": 4.408000,
		"Standard_NC48ads_A100_v4": 8.815000,
		"Standard_NC4as_T4_v3":     0.526000,
		"Standard_NC64as_T4_v3":    4.352000,
		"Standard_NC8as_T4_v3":     0.752000,
		"Standard_NC96ads_A100_v4": 17.630000,
		"Standard_NV36ads_A10_v5":  3.840000,
		"Standard_NV72ads_A10_v5":  7.824000,
	}
	// northeurope
	initialOnDemandPrices["northeurope"] = map[string]float64{
		"Standard_D16ds_v5":        1.008000,
		"Standard_D2ds_v5":         0.126000,
		"Standard_D4ds_v5":         0.252000,
		"Standard_D8ds_v5":         0.504000,
		"Standard_NC16as_T4_v3":    1.342000,
		"Standard_NC24ads_A100_v4": 4.408000,
		"Standard_NC48ads_A100_v4": 8.815000,
		"Standard_NC4as_T4_v3":     0.587000,
		"Standard_NC64as_T4_v3":    4.853000,
		"Standard_NC8as_T4_v3":     0.838000,
		"Standard_NC96ads_A100_v4": 17.630000,
		"Standard_NV36ads_A10_v5":  3.840000,
		"Standard_NV72ads_A10_v5":  7.824000,
	}
	// swedencentral
	initialOnDemandPrices["swedencentral"] = map[string]float64{
		"Standard_D16ds_v5":          0.960000,
		"Standard_D2ds_v5":           0.120000,
		"Standard_D4ds_v5":           0.240000,
		"Standard_D8ds_v5":           0.480000,
		"Standard_NC16as_T4_v3":      1.276000,
		"Standard_NC24ads_A100_v4":   4.775000,
		"Standard_NC48ads_A100_v4":   9.550000,
		"Standard_NC4as_T4_v3":       0.558000,
		"Standard_NC64as_T4_v3":      4.603000,
		"Standard_NC8as_T4_v3":       0.796000,
		"Standard_NC96ads_A100_v4":   19.100000,
		"Standard_NV36ads_A10_v5":    4.160000,
		"Standard_NV72ads_A10_v5":    8.476000,
	}
	// uksouth
	initialOnDemandPrices["uksouth"] = map[string]float64{
		"Standard_NC16as_T4_v3":     1.409000,
		"Standard_NC24ads_A100_v4":  4.591000,
		"Standard_NC48ads_A100_v4":  9.183000,
		"Standard_NC4as_T4_v3":      0.615000,
		"Standard_NC64as_T4_v3":     5.092000,
		"Standard_NC8as_T4_v3":      0.880000,
		"Standard_NC96ads_A100_v4":  18.365000,
		"Standard_NV36ads_A10_v5":   4.000000,
		"Standard_NV72ads_A10_v5":   8.150000,
		"Standard_D16ds_v5":         1.048000,
		"Standard_D2ds_v5":          0.131000,
		"Standard_D4ds_v5":          0.262000,
		"Standard_D8ds_v5":          0.524000,
	}
	// westeurope
	initialOnDemandPrices["westeurope"] = map[string]float64{
		"Standard_NC16as_T4_v3":     1.505000,
		"Standard_NC24ads_A100_v4":  4.775000,
		"Standard_NC48ads_A100_v4":  9.550000,
		"Standard_NC4as_T4_v3":      0.658000,
		"Standard_NC64as_T4_v3":     5.440000,
		"Standard_NC8as_T4_v3":      0.940000,
		"Standard_NC96ads_A100_v4":  19.100000,
		"Standard_NV36ads_A10_v5":   4.160000,
		"Standard_NV72ads_A10_v5":   8.476000,
		"Standard_D16ds_v5":         1.088000,
		"Standard_D2ds_v5":          0.136000,
		"Standard_D4ds_v5":          0.272000,
		"Standard_D8ds_v5":          0.544000,
	}
